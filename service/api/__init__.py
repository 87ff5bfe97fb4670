"""The HTTP layer: dependencies, schemas, error mapping, middleware and routes."""
