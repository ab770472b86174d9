"""Inference: ONNX export of the model's stages and one Engine interface over torch, ONNX Runtime
and TensorRT. ROS-free; the node only calls `create_engine`."""
