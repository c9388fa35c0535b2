from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantReadOnlyModelViewSet
from castiel.api.errors import ApiError
from castiel.api.schema import error_example, error_response
from credentials.api.filters import CredentialFilter, TokenRefreshAuditFilter
from credentials.api.serializers import (
    ConnectStartResponseSerializer,
    ConnectStartSerializer,
    CredentialCreateSerializer,
    CredentialSerializer,
    RefreshResponseSerializer,
    TokenRefreshAuditSerializer,
)
from credentials.connect import ConnectError, oauth_connect_start
from credentials.models import Credential, CredentialStatus, TokenRefreshAudit
from credentials.refresh import credential_refresh
from credentials.services import CredentialConflictError, credential_create, credential_revoke
from credentials.types import CredentialValidationError


def redirect_uri_for(request) -> str:
    path = reverse("credentials:oauth-callback")
    if settings.CASTIEL_PUBLIC_URL:
        return settings.CASTIEL_PUBLIC_URL.rstrip("/") + path
    return request.build_absolute_uri(path)


CREATE_EXAMPLES = [
    OpenApiExample(
        "An API key",
        value={
            "integration": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
            "type": "api_key",
            "secret": {"api_key": "sk_live_…"},
            "settings": {"header": "Authorization", "prefix": "Bearer "},
        },
        request_only=True,
    ),
]
LIVE_CREDENTIAL_EXISTS = error_response(
    "The integration already has a live credential (revoke it first).",
    error_example(
        "conflict",
        "integration 'CRM' already has a live credential; revoke it first",
        status=409,
    ),
)


@extend_schema_view(
    list=extend_schema(summary="List credentials (status and expiry; secrets masked)"),
    retrieve=extend_schema(summary="Get a credential (secrets masked)"),
    create=extend_schema(
        summary="Create a credential (non-interactive types)",
        request=CredentialCreateSerializer,
        responses={201: CredentialSerializer, 409: LIVE_CREDENTIAL_EXISTS},
        examples=CREATE_EXAMPLES,
    ),
    destroy=extend_schema(
        summary="Disconnect: revoke the credential (at the provider when supported)",
        responses={204: None},
    ),
)
@extend_schema(tags=["credentials"])
class CredentialViewSet(
    mixins.CreateModelMixin, mixins.DestroyModelMixin, TenantReadOnlyModelViewSet
):
    queryset = Credential.objects.select_related("integration")
    serializer_class = CredentialSerializer
    filterset_class = CredentialFilter
    ordering_fields = ["created_at", "expires_at", "last_refreshed_at", "status"]
    ordering = ["-created_at"]

    def get_serializer_class(self):
        if self.action == "create":
            return CredentialCreateSerializer
        if self.action == "connect":
            return ConnectStartSerializer
        return CredentialSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            credential = credential_create(
                integration=data["integration"],
                type=data["type"],
                secret=data["secret"],
                settings=data.get("settings"),
                scopes=data.get("scopes"),
                expires_at=data.get("expires_at"),
            )
        except CredentialValidationError as exc:
            raise ApiError(
                f"Invalid credential: {exc}", code="invalid", details=exc.errors
            ) from None
        except CredentialConflictError as exc:
            raise ApiError(str(exc), code="conflict", status=409) from None
        return Response(CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        credential_revoke(credential=self.get_object(), reason="disconnected through the API")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Revoke (disconnect) and return the credential",
        request=None,
        responses={200: CredentialSerializer},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, *args, **kwargs):
        credential = credential_revoke(
            credential=self.get_object(), reason="revoked through the API"
        )
        return Response(CredentialSerializer(credential).data)

    @extend_schema(
        summary="Refresh the token now (single-flight; audited as manual)",
        request=None,
        responses={
            200: RefreshResponseSerializer,
            409: error_response(
                "The credential is revoked (connect again instead).",
                error_example("credential_revoked", "This credential is revoked.", status=409),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        credential = self.get_object()
        if not credential.kind.refreshable:
            raise ApiError(
                f"{credential.type} credentials have no token to refresh.", code="not_refreshable"
            )
        if credential.status == CredentialStatus.REVOKED:
            raise ApiError(
                "This credential is revoked; connect the integration again.",
                code="credential_revoked",
                status=409,
            )
        result = credential_refresh(
            credential_id=credential.pk, trigger=TokenRefreshAudit.Trigger.MANUAL, force=True
        )
        return Response(
            {
                "outcome": result.outcome,
                "error_code": result.error_code,
                "message": result.message,
                "credential": CredentialSerializer(result.credential).data,
            }
        )

    @extend_schema(
        summary="Refresh attempts of this credential",
        responses={200: TokenRefreshAuditSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def audits(self, request, *args, **kwargs):
        credential = self.get_object()
        queryset = TokenRefreshAudit.objects.filter(credential=credential)
        page = self.paginate_queryset(queryset)
        serializer = TokenRefreshAuditSerializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    @extend_schema(
        summary="Start an OAuth2 connection: returns the provider's authorize URL",
        request=ConnectStartSerializer,
        responses={
            201: ConnectStartResponseSerializer,
            400: error_response(
                "Invalid input, or OAuth2 not supported or not configured for this provider.",
                error_example(
                    "oauth_not_configured",
                    "The integration has no OAuth2 client id (config.oauth.client_id).",
                    status=400,
                ),
            ),
        },
        examples=[
            OpenApiExample(
                "Connect",
                value={
                    "integration": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
                    "scopes": ["contacts.read", "contacts.write"],
                    "return_url": "/admin/",
                },
                request_only=True,
            )
        ],
    )
    @action(detail=False, methods=["post"])
    def connect(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            start = oauth_connect_start(
                integration=data["integration"],
                redirect_uri=redirect_uri_for(request),
                scopes=data.get("scopes"),
                return_url=data.get("return_url", ""),
                client_secret=data.get("client_secret"),
            )
        except ConnectError as exc:
            raise ApiError(exc.message, code=exc.code, status=exc.status) from None
        return Response(
            {
                "authorize_url": start.authorize_url,
                "redirect_uri": start.redirect_uri,
                "expires_at": start.expires_at,
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(
    list=extend_schema(summary="List token refresh attempts"),
    retrieve=extend_schema(summary="Get one token refresh attempt"),
)
@extend_schema(tags=["credentials"])
class TokenRefreshAuditViewSet(TenantReadOnlyModelViewSet):
    queryset = TokenRefreshAudit.objects.all()
    serializer_class = TokenRefreshAuditSerializer
    filterset_class = TokenRefreshAuditFilter
    ordering_fields = ["created_at", "duration_ms"]
    ordering = ["-created_at"]
