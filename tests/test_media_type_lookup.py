"""The validators' media-type lookup answers as Connexion's own, remembered or not."""

from __future__ import annotations

import pytest
from connexion.datastructures import MediaTypeDict
from hypothesis import given
from hypothesis import strategies as st

from pwreset.validation import KnownMediaTypes, validator_map

MEDIA_TYPES = st.sampled_from(
    [
        "application/json",
        "application/problem+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "text/plain",
        "text/html",
        "application/xml",
        "image/png",
        "application/grpc",
    ]
)


@pytest.mark.parametrize("kind", ["body", "response"])
@given(asked=st.lists(MEDIA_TYPES | st.text(max_size=20), max_size=30))
def test_a_remembered_lookup_is_connexions_lookup(kind, asked):
    known = validator_map()[kind]
    assert isinstance(known, KnownMediaTypes)
    plain = MediaTypeDict(dict(known))
    for media_type in asked:
        expected = plain.get(media_type)
        assert known.get(media_type) is expected
        if expected is None:
            with pytest.raises(KeyError):
                known[media_type]


def test_only_so_many_media_types_are_remembered():
    known = KnownMediaTypes({"*/*": 1})
    for i in range(KnownMediaTypes.LIMIT * 2):
        assert known[f"a/b{i}"] == 1
    assert len(known._matched) == KnownMediaTypes.LIMIT
