"""A dictionary that holds its keys weakly and tells them apart by identity.

``weakref.WeakKeyDictionary`` hashes and compares its keys with their own ``__hash__``
and ``__eq__``. nnlib keys per-object records by the user's objects (a model's kept
training setup, the fit that claims a model or an optimizer), and a user's subclass may
define value equality: two equal models would then share one record (a fit of one
refused as "in use" while the other trains), and a subclass with ``__eq__`` but no
``__hash__`` could not be a key at all (``fit`` raised ``TypeError: unhashable type``).
Here each key is one object, whatever it says about equality.
"""
import weakref

__all__ = ["WeakIdentityDict"]


class WeakIdentityDict:
    """``object -> value``, keys told apart by identity (``is``), never by ``==`` or
    ``hash``. Keys must accept weak references.

    ``prompt=True``: an entry goes as its key dies (its value may hold memory).
    ``prompt=False``: an entry whose key died stays until its id is set again or it is
    removed, and is never found (its dead reference is not the key), for maps whose
    entries their users remove (claims, released as each fit ends): no callback to
    make per entry.

    Thread-safe as a dict is under the GIL for a lookup, a set or a delete (one operation
    on the underlying dict each); ``setdefault`` and ``pop`` look up, then set or delete,
    so a caller that needs them atomic, or any check-then-set, holds its own lock.

    Examples
    --------
    >>> class Same:
    ...     def __eq__(self, other):
    ...         return True
    >>> d = WeakIdentityDict(); a, b = Same(), Same()
    >>> d[a] = 1; d.get(b), d[a], len(d)
    (None, 1, 1)
    >>> del a; len(d)
    0
    >>> d = WeakIdentityDict(prompt=False); d[b] = 2; d.pop(b), len(d)
    (2, 0)
    """

    __slots__ = ("_data", "_prompt")

    def __init__(self, prompt=True):
        self._data = {}             # id(key) -> (weak reference to key, value)
        self._prompt = prompt

    def _found(self, key):
        entry = self._data.get(id(key))
        # an entry of a dead object whose address the key reuses has a dead reference
        return entry if entry is not None and entry[0]() is key else None

    def get(self, key, default=None):
        """The value of ``key``, or ``default``."""
        entry = self._data.get(id(key))
        return entry[1] if entry is not None and entry[0]() is key else default

    def __getitem__(self, key):
        entry = self._found(key)
        if entry is None:
            raise KeyError(key)
        return entry[1]

    def __contains__(self, key):
        return self._found(key) is not None

    def __setitem__(self, key, value):
        data, k = self._data, id(key)
        if not self._prompt:
            data[k] = (weakref.ref(key), value)
            return

        def forget(ref):
            # runs as the key dies, before its address can be reused: the entry under
            # its id is still its own unless a later __setitem__ replaced it
            entry = data.get(k)
            if entry is not None and entry[0] is ref:
                data.pop(k, None)

        data[k] = (weakref.ref(key, forget), value)

    def setdefault(self, key, default=None):
        """The value of ``key``, set to ``default`` first if it has none."""
        entry = self._found(key)
        if entry is not None:
            return entry[1]
        self[key] = default
        return default

    def pop(self, key, *default):
        """Remove ``key``'s entry and return its value (``default``, if given, when it
        has none; else KeyError)."""
        entry = self._data.get(id(key))
        if entry is not None and entry[0]() is key:
            del self._data[id(key)]
            return entry[1]
        if default:
            return default[0]
        raise KeyError(key)

    def __delitem__(self, key):
        self.pop(key)

    def keys(self):
        """The live keys, as a list."""
        return [key for key in (ref() for ref, _ in list(self._data.values()))
                if key is not None]

    def items(self):
        """The live ``(key, value)`` pairs, as a list."""
        return [(key, value) for key, value in ((ref(), value) for ref, value in
                                                list(self._data.values()))
                if key is not None]

    def clear(self):
        self._data.clear()

    def __len__(self):
        return sum(1 for ref, _ in list(self._data.values()) if ref() is not None)
