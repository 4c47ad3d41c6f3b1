"""The log sources this tool ships, one module each; the registry is `lti_app.log_sources`."""
