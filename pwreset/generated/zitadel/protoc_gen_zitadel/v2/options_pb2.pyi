from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
OPTIONS_FIELD_NUMBER: _ClassVar[int]
options: _descriptor.FieldDescriptor

class Options(_message.Message):
    __slots__ = ("auth_option", "http_response")
    AUTH_OPTION_FIELD_NUMBER: _ClassVar[int]
    HTTP_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    auth_option: AuthOption
    http_response: CustomHTTPResponse
    def __init__(self, auth_option: _Optional[_Union[AuthOption, _Mapping]] = ..., http_response: _Optional[_Union[CustomHTTPResponse, _Mapping]] = ...) -> None: ...

class AuthOption(_message.Message):
    __slots__ = ("permission", "org_field")
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_FIELD_NUMBER: _ClassVar[int]
    permission: str
    org_field: str
    def __init__(self, permission: _Optional[str] = ..., org_field: _Optional[str] = ...) -> None: ...

class CustomHTTPResponse(_message.Message):
    __slots__ = ("success_code",)
    SUCCESS_CODE_FIELD_NUMBER: _ClassVar[int]
    success_code: int
    def __init__(self, success_code: _Optional[int] = ...) -> None: ...
