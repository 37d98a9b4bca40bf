"""The Microsoft identity platform and Graph v1.0 emulator (docs/sandbox-microsoft.md)."""
