"""One name registry for the Keras-style object modules (activations, losses, metrics, optimizers,
initializers, regularizers, schedules): ``get`` / ``serialize`` / ``deserialize`` in one place.

A ``Registry`` maps names to objects. Looking a name up is case-insensitive; a registered class
(or an entry registered with ``factory=True``) is called with no arguments, anything else is
returned as it is. Class names are registered too, so ``deserialize`` can rebuild an object from
the Keras layout ``{"class_name": ..., "config": ...}``. ``custom_objects`` (a dict of name ->
class or function) is searched first, exactly as Keras' ``custom_objects`` argument.

    >>> from graphc.object_registry import Registry
    >>> shapes = Registry("shape")
    >>> class Square:
    ...     def __init__(self, side=1.0): self.side = side
    ...     def get_config(self): return {"side": self.side}
    >>> _ = shapes.register(Square, "square", "sq")
    >>> shapes.get("SQ").side
    1.0
    >>> shapes.serialize(Square(2.0))
    {'class_name': 'Square', 'config': {'side': 2.0}}
    >>> shapes.deserialize({"class_name": "Square", "config": {"side": 3.0}}).side
    3.0
"""
from __future__ import annotations

import difflib

__all__ = ["Registry"]

_RAISE = object()


class Registry:
    """Names -> objects of one kind (``"loss"``, ``"optimizer"``...), for ``get``/``(de)serialize``.

    ``base``: the class whose instances ``get`` returns as they are (and whose subclasses it
    instantiates); ``callables``: whether ``get`` accepts any other callable as it is;
    ``none``: what ``get(None)`` returns (by default ``None`` is an error); ``hint``: what the
    error for an uninterpretable identifier says is accepted.
    """

    def __init__(self, kind: str, plural: str | None = None, base: type | None = None,
                 callables: bool = True, none=_RAISE, hint: str | None = None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self.base = base
        self.callables = callables
        self.none = none
        self.hint = hint or (f"a name, a config dict, a {base.__name__}" if base else "a name")
        self._by_name: dict[str, tuple[object, bool]] = {}    # lower-case name -> (obj, factory)
        self._classes: dict[str, type] = {}                     # class name -> class

    # -- registering ------------------------------------------------------------------------------
    def register(self, obj, *names: str, factory: bool | None = None):
        """Register ``obj`` under ``names`` (and, for a class, its class name); returns ``obj``.

        ``factory`` (default: ``obj`` is a class) makes ``get(name)`` return ``obj()``.
        """
        if factory is None:
            factory = isinstance(obj, type)
        for name in names:
            self._by_name[name.lower()] = (obj, factory)
        if isinstance(obj, type):
            self._classes[obj.__name__] = obj
        return obj

    def names(self) -> list[str]:
        """The registered names (not class names), sorted."""
        return sorted(self._by_name)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (name.lower() in self._by_name or name in self._classes)

    # -- lookup -----------------------------------------------------------------------------------
    def lookup(self, name: str, custom_objects=None):
        """``(obj, factory)`` for ``name``: ``custom_objects`` first, then class names, then names
        (any case); an unknown name raises ``ValueError`` listing the known ones."""
        if custom_objects and name in custom_objects:
            obj = custom_objects[name]
            return obj, isinstance(obj, type)
        if name in self._classes:
            return self._classes[name], True
        hit = self._by_name.get(name.lower())
        if hit is not None:
            return hit
        cls = next(
            (c for n, c in self._classes.items() if n.lower() == name.lower()), None)
        if cls is not None:
            return cls, True
        raise self.unknown(name)

    def unknown(self, name, extra: str = "") -> ValueError:
        """The error for an unknown name: the known names, a close match, ``custom_objects``."""
        known = self.names()
        classes = sorted(c for c in self._classes if c.lower() not in self._by_name)
        close = difflib.get_close_matches(str(name).lower(), known, n=1) or \
            difflib.get_close_matches(str(name), classes, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listed = ", ".join(known) + ("; classes: " if known and classes else "") + ", ".join(classes)
        return ValueError(f"unknown {self.kind} {name!r}{hint}; known {self.plural}: {listed}"
                          f"{extra}; for your own {self.kind}, pass the object itself or "
                          f"custom_objects={{{str(name)!r}: ...}}")

    def get(self, identifier, custom_objects=None):
        """The object for a name, a ``{"class_name", "config"}`` dict, an instance of ``base``
        (as it is), a subclass of ``base`` (instantiated) or, if allowed, any callable (a class
        is instantiated with no arguments, any other callable returned as it is)."""
        if identifier is None:
            if self.none is _RAISE:
                raise ValueError(f"no {self.kind} given (None); pass {self.hint}")
            return self.none
        if isinstance(identifier, str):
            obj, factory = self.lookup(identifier, custom_objects)
            return obj() if factory else obj
        if isinstance(identifier, dict):
            return self.deserialize(identifier, custom_objects)
        if self.base is not None and isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, type):   # a class is instantiated, as Keras' get does
            if self.callables or (self.base is not None and issubclass(identifier, self.base)):
                return identifier()
        elif self.callables and callable(identifier):
            return identifier
        raise ValueError(f"could not interpret the {self.kind} {identifier!r}; pass {self.hint}")

    # -- configs ----------------------------------------------------------------------------------
    def name_of(self, obj):
        """The first registered name of ``obj`` (by identity), or None."""
        return next((n for n, (o, _) in self._by_name.items() if o is obj), None)

    def serialize(self, obj):
        """``None`` -> None, a name -> the name, an object with ``get_config`` -> the Keras dict,
        a registered function -> its name; anything else raises ``ValueError``."""
        if obj is None or isinstance(obj, str):
            return obj
        if hasattr(obj, "get_config") and not isinstance(obj, type):
            return {"class_name": type(obj).__name__, "config": obj.get_config()}
        name = self.name_of(obj)
        if name is not None:
            return name
        raise ValueError(f"cannot serialize the {self.kind} {obj!r}: it is neither a registered "
                         f"{self.kind} nor an object with get_config(); use a graphc {self.kind} "
                         f"class (or give your class get_config/from_config)")

    def deserialize(self, config, custom_objects=None):
        """An object from ``serialize``'s output: a name, or ``{"class_name": ..., "config": ...}``
        rebuilt with ``cls.from_config(config)`` (``cls(**config)`` without ``from_config``)."""
        if isinstance(config, str):
            return self.get(config, custom_objects)
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(f"a serialized {self.kind} is a name or a dict with 'class_name' and "
                             f"'config', got {config!r}")
        name = config["class_name"]
        cls, _ = self.lookup(str(name), custom_objects)
        if not isinstance(cls, type):
            raise self.unknown(name, " (as a class name)")
        args = config.get("config") or {}
        from_config = getattr(cls, "from_config", None)
        return from_config(args) if from_config is not None else cls(**args)
