"""One router per resource; `operator_data.api.app.create_app` mounts them."""
