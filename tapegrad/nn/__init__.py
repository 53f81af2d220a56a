"""The neural-network layer of tapegrad: layers, losses, optimizers, metrics, models and
data. See docs/design-nn.md for the layout and the contracts between the modules."""
