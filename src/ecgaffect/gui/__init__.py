"""pyqtgraph/Qt views over a running pipeline; owns no signal processing or model logic."""
