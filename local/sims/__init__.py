"""Simulators of Microsoft identity, Microsoft Graph and the Syncro API (loopback HTTPS)."""
