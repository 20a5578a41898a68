"""The subscriber registry: numbers bound to identity handles, never to names or document numbers."""

from idproof.registry.handles import DocumentIdentity, RegistryKey, RegistryKeyError

__all__ = ["DocumentIdentity", "RegistryKey", "RegistryKeyError"]
