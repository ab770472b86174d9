"""ROS 2 side of rust_perception: the node, its offline (rosbag2) runner and a synthetic rig recording."""
