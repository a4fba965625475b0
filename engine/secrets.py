"""Secrets (hub tokens, API keys) live only in the OS keychain through keyring: never in files or logs."""
from __future__ import annotations

import logging

import keyring
from keyring.errors import KeyringError

from engine.errors import PonderError

log = logging.getLogger(__name__)
SERVICE = "Ponder"
HUB_TOKEN = "hub-token"


def get_secret(name: str) -> str | None:
    """The secret, or None when unset or when this system has no usable keychain (logged, never the value)."""
    try:
        return keyring.get_password(SERVICE, name)
    except keyring.errors.NoKeyringError:
        log.debug("no system keychain: %s is not set", name)  # a normal state on servers and minimal desktops
        return None
    except KeyringError as e:
        log.warning("the keychain could not be read for %s: %s", name, type(e).__name__)
        return None


def set_secret(name: str, value: str) -> None:
    try:
        keyring.set_password(SERVICE, name, value)
    except KeyringError as e:
        raise PonderError(f"The system keychain refused to store the {name} ({type(e).__name__}); Ponder keeps "
                          "secrets nowhere else.") from None


def delete_secret(name: str) -> None:
    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        pass
    except KeyringError as e:
        raise PonderError(f"The system keychain could not remove the {name} ({type(e).__name__}).") from None
