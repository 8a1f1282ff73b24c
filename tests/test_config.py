import pytest

from pneumolens.config import DEFAULT_METHOD, Config


def test_default_method_is_the_documented_one():
    assert Config().method == DEFAULT_METHOD


@pytest.mark.parametrize("kwargs, match", [({"method": "magic"}, "method"), ({"threads": -1}, "threads")])
def test_invalid_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)
