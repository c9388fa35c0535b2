"""Baseline views for the benchmark harness (only routed when CASTIEL_BENCH_VIEWS=1)."""

from django.http import JsonResponse


def bare_view(request):
    return JsonResponse({"ok": True})
