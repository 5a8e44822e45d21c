"""Operating the app: health, and (later) the admin views."""
