"""Input/output shapes of the accounts API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer

from outbound.accounts.models import ApiKey, Role, User


class RoleSerializer(serializers.ModelSerializer[Role]):
    permissions = serializers.ListField(child=serializers.CharField(max_length=100))

    class Meta:
        model = Role
        fields = ["id", "name", "permissions"]


class UserSerializer(serializers.ModelSerializer[User]):
    password = serializers.CharField(
        write_only=True, max_length=128, style={"input_type": "password"}
    )
    roles = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Role.objects.all(), required=False
    )
    is_superuser = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "password",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_superuser",
            "roles",
            "date_joined",
            "last_login",
        ]
        read_only_fields = ["date_joined", "last_login"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:  # updating: the password is optional
            fields["password"].required = False
        return fields


class TokenRequestSerializer(TokenObtainPairSerializer):
    pass


class TokenRefreshRequestSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, answering 401 (not 500) when the token's user has been deleted."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except User.DoesNotExist as exc:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc


class PermissionFlagsSerializer(serializers.Serializer[dict[str, bool]]):
    list = serializers.BooleanField()
    view = serializers.BooleanField()
    create = serializers.BooleanField()  # type: ignore[assignment]
    edit = serializers.BooleanField()
    delete = serializers.BooleanField()


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    """A key as lists and details show it: never the key itself, only its public prefix."""

    permissions = serializers.ListField(child=serializers.CharField(max_length=100))

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "owner",
            "permissions",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreateInput(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=100)
    permissions = serializers.ListField(child=serializers.CharField(max_length=100))
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(serializers.ModelSerializer[ApiKey]):
    """The answer to a create: the only time the key (``context["key"]``) is ever shown."""

    permissions = serializers.ListField(child=serializers.CharField(max_length=100))
    key = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "permissions", "created_at", "expires_at", "key"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(help_text="The key; shown only in this answer."))
    def get_key(self, obj: ApiKey) -> str:
        return str(self.context["key"])
