from google.api import field_behavior_pb2 as _field_behavior_pb2
from pwreset.generated.protoc_gen_openapiv2.options import annotations_pb2 as _annotations_pb2
from pwreset.generated.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NotificationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_TYPE_Unspecified: _ClassVar[NotificationType]
    NOTIFICATION_TYPE_Email: _ClassVar[NotificationType]
    NOTIFICATION_TYPE_SMS: _ClassVar[NotificationType]
NOTIFICATION_TYPE_Unspecified: NotificationType
NOTIFICATION_TYPE_Email: NotificationType
NOTIFICATION_TYPE_SMS: NotificationType

class Password(_message.Message):
    __slots__ = ("password", "change_required")
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CHANGE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    password: str
    change_required: bool
    def __init__(self, password: _Optional[str] = ..., change_required: _Optional[bool] = ...) -> None: ...

class HashedPassword(_message.Message):
    __slots__ = ("hash", "change_required")
    HASH_FIELD_NUMBER: _ClassVar[int]
    CHANGE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    hash: str
    change_required: bool
    def __init__(self, hash: _Optional[str] = ..., change_required: _Optional[bool] = ...) -> None: ...

class SendPasswordResetLink(_message.Message):
    __slots__ = ("notification_type", "url_template")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    notification_type: NotificationType
    url_template: str
    def __init__(self, notification_type: _Optional[_Union[NotificationType, str]] = ..., url_template: _Optional[str] = ...) -> None: ...

class ReturnPasswordResetCode(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPassword(_message.Message):
    __slots__ = ("password", "hashed_password", "current_password", "verification_code")
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    HASHED_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_CODE_FIELD_NUMBER: _ClassVar[int]
    password: Password
    hashed_password: HashedPassword
    current_password: str
    verification_code: str
    def __init__(self, password: _Optional[_Union[Password, _Mapping]] = ..., hashed_password: _Optional[_Union[HashedPassword, _Mapping]] = ..., current_password: _Optional[str] = ..., verification_code: _Optional[str] = ...) -> None: ...
