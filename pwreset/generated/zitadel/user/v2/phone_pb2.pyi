from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from pwreset.generated.protoc_gen_openapiv2.options import annotations_pb2 as _annotations_pb2_1
from pwreset.generated.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetHumanPhone(_message.Message):
    __slots__ = ("phone", "send_code", "return_code", "is_verified")
    PHONE_FIELD_NUMBER: _ClassVar[int]
    SEND_CODE_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    IS_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    phone: str
    send_code: SendPhoneVerificationCode
    return_code: ReturnPhoneVerificationCode
    is_verified: bool
    def __init__(self, phone: _Optional[str] = ..., send_code: _Optional[_Union[SendPhoneVerificationCode, _Mapping]] = ..., return_code: _Optional[_Union[ReturnPhoneVerificationCode, _Mapping]] = ..., is_verified: _Optional[bool] = ...) -> None: ...

class HumanPhone(_message.Message):
    __slots__ = ("phone", "is_verified")
    PHONE_FIELD_NUMBER: _ClassVar[int]
    IS_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    phone: str
    is_verified: bool
    def __init__(self, phone: _Optional[str] = ..., is_verified: _Optional[bool] = ...) -> None: ...

class SendPhoneVerificationCode(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReturnPhoneVerificationCode(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
