"""rust_perception: RUST (Really Unposed Scene representation Transformer) for robots.

The core package is ROS-free: it never imports rclpy, so the trainer, the benchmarks and the
tests run on any Python machine; `ros2_rust_node` holds the ROS 2 glue.
"""

__version__ = "0.1.0"
