from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from pwreset.generated.protoc_gen_openapiv2.options import annotations_pb2 as _annotations_pb2
from pwreset.generated.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LDAPCredentials(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class RedirectURLs(_message.Message):
    __slots__ = ("success_url", "failure_url")
    SUCCESS_URL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_URL_FIELD_NUMBER: _ClassVar[int]
    success_url: str
    failure_url: str
    def __init__(self, success_url: _Optional[str] = ..., failure_url: _Optional[str] = ...) -> None: ...

class IDPIntent(_message.Message):
    __slots__ = ("idp_intent_id", "idp_intent_token", "user_id")
    IDP_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDP_INTENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    idp_intent_id: str
    idp_intent_token: str
    user_id: str
    def __init__(self, idp_intent_id: _Optional[str] = ..., idp_intent_token: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class IDPInformation(_message.Message):
    __slots__ = ("oauth", "ldap", "saml", "idp_id", "user_id", "user_name", "raw_information")
    OAUTH_FIELD_NUMBER: _ClassVar[int]
    LDAP_FIELD_NUMBER: _ClassVar[int]
    SAML_FIELD_NUMBER: _ClassVar[int]
    IDP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    RAW_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    oauth: IDPOAuthAccessInformation
    ldap: IDPLDAPAccessInformation
    saml: IDPSAMLAccessInformation
    idp_id: str
    user_id: str
    user_name: str
    raw_information: _struct_pb2.Struct
    def __init__(self, oauth: _Optional[_Union[IDPOAuthAccessInformation, _Mapping]] = ..., ldap: _Optional[_Union[IDPLDAPAccessInformation, _Mapping]] = ..., saml: _Optional[_Union[IDPSAMLAccessInformation, _Mapping]] = ..., idp_id: _Optional[str] = ..., user_id: _Optional[str] = ..., user_name: _Optional[str] = ..., raw_information: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class IDPOAuthAccessInformation(_message.Message):
    __slots__ = ("access_token", "id_token")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    id_token: str
    def __init__(self, access_token: _Optional[str] = ..., id_token: _Optional[str] = ...) -> None: ...

class IDPLDAPAccessInformation(_message.Message):
    __slots__ = ("attributes",)
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    attributes: _struct_pb2.Struct
    def __init__(self, attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class IDPSAMLAccessInformation(_message.Message):
    __slots__ = ("assertion",)
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    assertion: bytes
    def __init__(self, assertion: _Optional[bytes] = ...) -> None: ...

class IDPLink(_message.Message):
    __slots__ = ("idp_id", "user_id", "user_name")
    IDP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    idp_id: str
    user_id: str
    user_name: str
    def __init__(self, idp_id: _Optional[str] = ..., user_id: _Optional[str] = ..., user_name: _Optional[str] = ...) -> None: ...
