"""help() and IDEs show the real constructor parameters of layers, on the classes and on
the builder's factories (not ``(*args, **kwargs)``)."""

import inspect
import pydoc

import pytest

import tapegrad
import tapegrad.nn.layers as layers

P = inspect.Parameter
LAYER_KEYWORDS = ["name", "input_shape", "dtype", "trainable"]
DENSE = ["units", "activation", "use_bias", "kernel_initializer", "bias_initializer", *LAYER_KEYWORDS]


def names(signature):
    return list(signature.parameters)


def test_dense_shows_its_parameters_and_the_layer_keywords():
    signature = inspect.signature(tapegrad.layers.Dense)
    assert names(signature) == DENSE
    assert signature.parameters["units"].default is P.empty
    assert signature.parameters["activation"].default is None
    assert all(signature.parameters[k].kind is P.KEYWORD_ONLY for k in LAYER_KEYWORDS)
    signature.bind(16, "relu", name="hidden", input_shape=[4])  # what a user writes binds
    assert "units" in pydoc.render_doc(tapegrad.layers.Dense)


@pytest.mark.parametrize("name", [n for n in layers.__all__ if isinstance(getattr(layers, n), type)])
def test_no_layer_class_hides_parameters_behind_kwargs(name):
    signature = inspect.signature(getattr(layers, name))
    assert not [p for p in signature.parameters.values() if p.kind in (P.VAR_KEYWORD, P.VAR_POSITIONAL)]
    assert names(signature)[-4:] == LAYER_KEYWORDS


def test_the_builder_shows_the_parameters_with_its_dtype_as_the_default():
    nn = tapegrad.NeuralNetworks("float64")
    signature = inspect.signature(nn.layers.Dense)
    assert names(signature) == DENSE
    assert signature.parameters["dtype"].default == "float64"
    assert inspect.signature(tapegrad.NeuralNetworks().layers.Dense).parameters["dtype"].default == "float32"
    assert names(inspect.signature(nn.layers.Flatten)) == LAYER_KEYWORDS
    assert names(inspect.signature(nn.models.Sequential)) == ["layers", *LAYER_KEYWORDS]
    assert nn.layers.Dense(3).dtype == "float64"
    assert "units" in pydoc.render_doc(nn.layers.Dense)


def test_user_layers_forwarding_kwargs_show_what_they_forward():
    class Scaled(layers.Dense):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

    signature = inspect.signature(Scaled)
    assert names(signature) == ["factor", *DENSE]
    assert signature.parameters["units"].kind is P.KEYWORD_ONLY  # only reachable by keyword through **kwargs
    assert Scaled(2.0, units=3).units == 3

    class Plain(layers.Layer):
        def __init__(self, size):
            super().__init__()
            self.size = size

    assert names(inspect.signature(Plain)) == ["size"]
    assert "training" in names(inspect.signature(Plain(1)))  # an instance's signature is its __call__'s
