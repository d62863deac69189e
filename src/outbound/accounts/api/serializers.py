"""Input/output shapes of the accounts API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

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


REFRESH_PASSWORD_CHANGED = "The refresh token was issued before the password changed."


class TokenRefreshRequestSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, answering 401 (not 500) when the token's user has been deleted,
    and refusing a token issued before the user's password last changed.

    Every token carries a fingerprint of the password hash it was issued under
    (``CHECK_REVOKE_TOKEN``); authentication compares it for access tokens, and simplejwt's
    refresh does not, so a stolen refresh token would outlive the password change meant to
    end it. Any path that changes the password (API, console, ``set_password``) changes the
    hash, so no path needs to remember to revoke anything.
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # a bad token: the view's 401
        try:
            user = User.objects.get(
                **{jwt_settings.USER_ID_FIELD: refresh.payload[jwt_settings.USER_ID_CLAIM]}
            )
            if jwt_settings.CHECK_REVOKE_TOKEN and refresh.payload.get(
                jwt_settings.REVOKE_TOKEN_CLAIM
            ) != get_md5_hash_password(user.password):
                raise AuthenticationFailed(REFRESH_PASSWORD_CHANGED, "password_changed")
            return super().validate(attrs)  # the user must still be active
        except (User.DoesNotExist, KeyError) as exc:
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
