"""Model fields that keep their value encrypted at rest (Fernet, keys from settings.FIELD_ENCRYPTION_KEYS).

The first key encrypts; every key decrypts, so keys rotate by prepending a new one.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

_PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: no key to encrypt credentials with")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return _PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt_text(stored: str) -> str:
    return _decrypt_cached(stored, tuple(settings.FIELD_ENCRYPTION_KEYS))


@lru_cache(maxsize=512)
def _decrypt_cached(stored: str, keys: tuple[str, ...]) -> str:
    # Keyed by the ciphertext: every encryption yields a new token, so a changed secret is never served stale.
    # Webhook intake reads the channel row on every delivery; this keeps decryption off that path.
    if not stored.startswith(_PREFIX):
        raise ImproperlyConfigured("an encrypted field holds a value that was not encrypted")
    try:
        return _fernet(keys).decrypt(stored[len(_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("no key in FIELD_ENCRYPTION_KEYS decrypts a stored secret") from exc


class EncryptedTextField(models.TextField):
    """A string that is stored encrypted; "" is stored as "" so that "no secret" stays visible."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt_text(str(value))


class EncryptedJSONField(models.TextField):
    """A JSON object stored encrypted as a whole."""

    # What django-stubs reads as the field's Python type: a dict in and out (the text is the database's).
    _pyi_private_set_type: dict[str, Any]  # type: ignore[assignment]
    _pyi_private_get_type: dict[str, Any]  # type: ignore[assignment]

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict[str, Any]:
        if not value:
            return {}
        return dict(json.loads(decrypt_text(value)))

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return dict(json.loads(value))

    def get_prep_value(self, value: Any) -> Any:
        if not value:
            return ""
        return encrypt_text(json.dumps(value, sort_keys=True))


class CompressedTextField(models.BinaryField):
    """Text kept zlib-compressed: webhook bodies are large, written once and read once (about 4x smaller).

    Values stored before compression came in (plain text) are still read as they are.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        return self.to_python(value)

    def to_python(self, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raw = bytes(value)
        try:
            return zlib.decompress(raw).decode("utf-8")
        except zlib.error:
            return raw.decode("utf-8", errors="replace")

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        text = value if isinstance(value, str) else bytes(value).decode("utf-8")
        return zlib.compress(text.encode("utf-8"), 1)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        return connection.Database.Binary(value) if value is not None else None

    def value_to_string(self, obj: models.Model) -> str:
        return str(self.value_from_object(obj) or "")


def money_field(**options: Any) -> models.DecimalField[Decimal, Decimal]:
    # Three decimals: currencies such as KWD and BHD have them; amounts never go through float.
    return models.DecimalField(max_digits=14, decimal_places=3, **{"default": Decimal("0"), **options})
