"""What the app shows to people and clients over HTTP: responses, the settings page."""
