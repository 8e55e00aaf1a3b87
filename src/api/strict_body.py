"""Request bodies decoded strictly, once, by a decoder built once per body type.

Litestar's own decoding converts leniently (`"3"` becomes 3); the contract says a value of the wrong
JSON type is 400 naming the field. So every `data: JSONBody[SomeStruct]` is decoded by `StrictBody`,
a DTO handed out by the `StrictBodies` plugin: the raw bytes' shape is bounded first (json_limits),
then no string may hold U+0000, then `msgspec.json.Decoder(SomeStruct, strict=True)` decodes them.
The OpenAPI document describes the Struct itself, as without the DTO.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import msgspec
from litestar.dto import AbstractDTO
from litestar.exceptions import ClientException, ValidationException
from litestar.params import BodyKwarg
from litestar.plugins import SerializationPlugin

from api.json_limits import may_hold_nul, nul_path, shape_problem

if TYPE_CHECKING:
    from litestar.dto.data_structures import DTOFieldDefinition
    from litestar.openapi.spec import Reference, Schema
    from litestar.typing import FieldDefinition

T = TypeVar("T")

NUL_MESSAGE = "must not contain U+0000 (NUL): the store cannot hold it"
_PATH = re.compile(r"\s*-\s*at `\$\.?(?P<path>[^`]*)`$")


def invalid(field: str, message: str, source: str) -> ValidationException:
    """A 400 naming one field; `api.errors` turns it into a problem document."""
    return ValidationException(
        detail="invalid input", extra=[{"message": message, "key": field, "source": source}]
    )


class StrictBody(AbstractDTO[T]):
    """`StrictBody[SomeStruct]` decodes a request body into `SomeStruct`, refusing any lenient conversion.

    Only `decode_bytes` is used: Litestar hands the raw body to a DTO, and this one needs none of
    the field-by-field machinery other DTOs generate.
    """

    decoder: ClassVar[msgspec.json.Decoder[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(getattr(cls, "model_type", None), type):
            cls.decoder = msgspec.json.Decoder(cls.model_type, strict=True)

    def decode_bytes(self, value: bytes) -> T:
        problem = shape_problem(value)
        if problem is not None:
            raise invalid("body", problem, "body")
        try:
            if may_hold_nul(value):
                path = nul_path(msgspec.json.decode(value))
                if path is not None:
                    raise invalid(path or "body", NUL_MESSAGE, "body")
            decoded: T = self.decoder.decode(value)
        except msgspec.ValidationError as error:
            raise field_error(error) from error
        except msgspec.DecodeError as error:  # not JSON at all: no field to name
            raise ClientException(str(error)) from error
        return decoded

    def decode_builtins(self, value: Any) -> T:
        """Form data never reaches a JSON route; decode any other builtins just as strictly."""
        try:
            converted: T = msgspec.convert(value, self.model_type, strict=True)
        except msgspec.ValidationError as error:
            raise field_error(error) from error
        return converted

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        """Nothing to build per handler: the decoder belongs to the body type."""

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Reference | Schema:
        """The Struct's own schema, as Litestar documents a body without a DTO."""
        schema: Reference | Schema = schema_creator.for_field_definition(field_definition)
        return schema

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False


def field_error(error: msgspec.ValidationError) -> ValidationException:
    """msgspec's "Expected `int`, got `str` - at `$.steps[0].cpuCount`" as a message and a field path."""
    message = str(error)
    found = _PATH.search(message)
    if found:
        message = message[: found.start()]
    key = found.group("path") if found else ""
    return ValidationException(
        detail="invalid body", extra=[{"message": message, "key": key or "data", "source": "body"}]
    )


class StrictBodies(SerializationPlugin):
    """Gives every `data: JSONBody[SomeStruct]` parameter its `StrictBody[SomeStruct]`, one per type."""

    def __init__(self) -> None:
        self._dtos: dict[Any, type[StrictBody[Any]]] = {}

    def supports_type(self, field_definition: FieldDefinition) -> bool:
        return isinstance(field_definition.kwarg_definition, BodyKwarg) and field_definition.is_subclass_of(
            msgspec.Struct
        )

    def create_dto_for_type(self, field_definition: FieldDefinition) -> type[StrictBody[Any]]:
        body_type = field_definition.annotation
        if body_type not in self._dtos:
            self._dtos[body_type] = StrictBody[body_type]  # type: ignore[valid-type]
        return self._dtos[body_type]
