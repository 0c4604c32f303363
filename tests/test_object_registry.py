"""The Registry behind every ``get``/``serialize``/``deserialize``: lookup order and case,
factories, custom_objects, classes, None, and the errors' wording."""
import pytest

from graphc.object_registry import Registry


class Base:
    def __init__(self, size=1):
        self.size = size

    def get_config(self):
        return {"size": self.size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Big(Base):
    pass


class Plain:                      # no from_config: deserialize calls it with the config
    def __init__(self, a=0):
        self.a = a


def small():
    return Base(size=0)


def make_registry(**kw):
    r = Registry("widget", base=Base, **kw)
    r.register(Base, "base")
    r.register(Big, "big", "large")
    r.register(small, "small", factory=True)
    r.register(len, "length")
    return r


def test_lookup_case_classes_factories_and_functions():
    r = make_registry()
    assert type(r.get("BIG")) is Big and type(r.get("Large")) is Big and type(r.get("Big")) is Big
    assert r.get("small").size == 0                    # a factory is called
    assert r.get("length") is len                       # a function is returned
    assert r.names() == ["base", "big", "large", "length", "small"]
    assert "big" in r and "Big" in r and "huge" not in r and 3 not in r
    b = Big(5)
    assert r.get(b) is b and type(r.get(Big)) is Big
    assert r.get(print) is print


def test_custom_objects_come_first():
    r = make_registry()
    assert r.get("big", custom_objects={"big": Plain}).__class__ is Plain
    assert r.get("mine", custom_objects={"mine": abs}) is abs
    assert r.deserialize({"class_name": "Plain", "config": {"a": 3}}, custom_objects={"Plain": Plain}).a == 3


def test_none_and_uninterpretable_identifiers():
    with pytest.raises(ValueError, match="no widget given \\(None\\); pass a name, a config dict, a Base"):
        make_registry().get(None)
    assert make_registry(none="default").get(None) == "default"
    strict = make_registry(callables=False)
    with pytest.raises(ValueError, match="could not interpret the widget <built-in function print>"):
        strict.get(print)
    with pytest.raises(ValueError, match="could not interpret the widget <class .*Plain"):
        strict.get(Plain)
    assert type(make_registry().get(Plain)) is Plain       # callables allowed: classes instantiated


def test_unknown_names_list_names_classes_and_a_close_match():
    r = make_registry()
    r.register(Plain)                                   # a class without names
    with pytest.raises(ValueError) as e:
        r.get("bigg")
    assert str(e.value) == ("unknown widget 'bigg' (did you mean 'big'?); known widgets: base, big, large, "
                            "length, small; classes: Plain; for your own widget, pass the object "
                            "itself or custom_objects={'bigg': ...}")


def test_serialize_and_deserialize():
    r = make_registry()
    assert r.serialize(Big(3)) == {"class_name": "Big", "config": {"size": 3}}
    assert r.serialize(len) == "length" and r.serialize("big") == "big" and r.serialize(None) is None
    again = r.deserialize(r.serialize(Big(3)))
    assert type(again) is Big and again.size == 3
    assert type(r.deserialize("big")) is Big
    assert type(r.deserialize({"class_name": "big"})) is Big        # names of classes work too
    with pytest.raises(ValueError, match="cannot serialize the widget <built-in function abs>"):
        r.serialize(abs)
    with pytest.raises(ValueError, match="'length'.*\\(as a class name\\)"):
        r.deserialize({"class_name": "length"})
    with pytest.raises(ValueError, match="a serialized widget is a name or a dict with 'class_name'"):
        r.deserialize(["big"])
