"""The service layer: settings, the CLI and the HTTP app (``service.app.create_app``)."""
