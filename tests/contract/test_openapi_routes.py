"""docs/openapi.yaml describes exactly the HTTP routes function_app.py registers: every operation
documented is registered with the documented auth level, every registered one is documented, and
every Syncro-id route parameter is int64 in both (``{x:long}``, never ``{x:int}``)."""

from __future__ import annotations

import function_app
from tests.contract.openapi_doc import (
    documented_operations,
    load_document,
    path_parameter_schemas,
    registered_operations,
    typed_route_parameters,
)


def test_every_registered_route_is_documented_with_its_auth_level() -> None:
    missing = registered_operations(function_app.app) - documented_operations(load_document())
    assert not missing, (
        f"registered but not in docs/openapi.yaml (or with another auth level): {sorted(missing, key=str)}"
    )


def test_every_documented_operation_is_registered() -> None:
    extra = documented_operations(load_document()) - registered_operations(function_app.app)
    assert not extra, f"in docs/openapi.yaml but not registered as documented: {sorted(extra, key=str)}"


def test_long_route_parameters_are_int64_in_the_document_and_no_route_uses_int() -> None:
    document = load_document()
    for (path, name), constraint in typed_route_parameters(function_app.app).items():
        assert constraint == "long", f"{path}: {{{name}:{constraint}}} (Syncro ids exceed Int32)"
        schema = path_parameter_schemas(document, path)[name]
        assert (schema["type"], schema["format"]) == ("integer", "int64"), (path, name, schema)


def test_the_document_is_valid_openapi() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(load_document())
    schema.validate()  # raises on a document that is not OpenAPI 3.0


def test_the_comparison_sees_a_missing_method_and_a_wrong_auth_level() -> None:
    """The check itself can fail: drop one documented method and flip one auth level."""
    document = load_document()
    del document["paths"]["/api/admin/feeds/{syncro_user_id}"]["delete"]
    document["paths"]["/api/admin/links"]["get"]["x-auth"] = "anonymous"
    missing = registered_operations(function_app.app) - documented_operations(document)
    assert {(op.path, op.method) for op in missing} == {
        ("/api/admin/feeds/{syncro_user_id}", "DELETE"),
        ("/api/admin/links", "GET"),
    }
