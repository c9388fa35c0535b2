"""Baseline views for the benchmark harness (only routed when CASTIEL_BENCH_VIEWS=1)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # the webhooks bench POSTs the same signed deliveries here as to the receiver
def bare_view(request):
    return JsonResponse({"ok": True})
