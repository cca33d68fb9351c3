"""Model routing: the client's model name → provider(s) and upstream model.

Order: a config alias (exact, then ``*`` patterns in file order) rewrites the
name; a ``provider/model`` name picks that provider explicitly (any model
name, listed or not); otherwise every provider that declares the model
serves it.
"""

from __future__ import annotations

from polyrelay.config import Config
from polyrelay.plugins import Binding
from polyrelay.urls import model_name_problem


class ModelNotFound(LookupError):
    """No provider serves the requested model."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


class InvalidModelName(ModelNotFound):
    """The requested name does not look like a model name (see :mod:`polyrelay.urls`)."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(model)
        self.reason = reason


class Router:
    """Resolves model names against the registered providers."""

    def __init__(self, bindings: list[Binding], config: Config) -> None:
        self.config = config
        self.bindings = {b.provider.name: b for b in bindings}
        self._by_model: dict[str, list[tuple[Binding, str]]] = {}
        self._previews: dict[tuple[str, str], tuple[str, ...]] = {}
        for binding in bindings:
            for info in binding.provider.models:
                self._by_model.setdefault(info.id, []).append((binding, info.upstream_name))
                if info.previews:
                    self._previews[(binding.provider.name, info.upstream_name)] = info.previews

    def resolve(self, model: str) -> list[tuple[Binding, str]]:
        """``(binding, upstream model)`` pairs that can serve ``model``."""
        alias = self.config.resolve_alias(model)
        target = alias or model
        if alias is None:
            self.check_name(model)
        provider, slash, rest = target.partition("/")
        if slash and provider in self.bindings:
            binding = self.bindings[provider]
            upstream = next((i.upstream_name for i in binding.provider.models if i.id == rest), rest)
            return [(binding, upstream)]
        found = self._by_model.get(target)
        if not found:
            raise ModelNotFound(model)
        return found

    def previews(self, provider: str, upstream_model: str) -> tuple[str, ...]:
        """The preview siblings ``provider`` declares for ``upstream_model`` (see ``ModelInfo.previews``)."""
        return self._previews.get((provider, upstream_model), ())

    def check_name(self, model: str) -> None:
        """Raise :class:`InvalidModelName` unless ``model`` is served as it is or looks like a model name.

        A name an alias matches (exactly or by pattern) is the operator's to route: its target, not
        the client's text, is what travels on.
        """
        if model in self._by_model or self.config.resolve_alias(model) is not None:
            return
        problem = model_name_problem(model)
        if problem is not None:
            raise InvalidModelName(model, problem)

    def models(self) -> list[tuple[str, str]]:
        """``(model id, provider name)`` for every routable model, aliases included."""
        rows = [(model, b.provider.name) for model, targets in self._by_model.items() for b, _ in targets]
        for alias in self.config.model_aliases:
            if "*" in alias:
                continue
            try:
                rows.extend((alias, b.provider.name) for b, _ in self.resolve(alias))
            except ModelNotFound:
                continue
        return sorted(set(rows))
