"""Launch `rust_node` (lifecycle), configure and activate it, and optionally RViz.

    ros2 launch rust_perception rust.launch.py                       # installed config/node.yaml
    ros2 launch rust_perception rust.launch.py model_dir:=/data/models/rust_street rviz:=true
    ros2 launch rust_perception rust.launch.py params_file:=my_node.yaml autostart:=false
    ros2 lifecycle set /rust_node configure   # with autostart:=false, by hand (then: activate)

Arguments:
    params_file  parameters of the node (default: share/rust_perception/config/node.yaml).
    model_dir    model directory written by rust_export; empty (the default) keeps the
                 params file's model_dir. Relative paths resolve against the directory
                 `ros2 launch` runs in.
    backend      auto | tensorrt | onnxruntime | torch (default auto).
    namespace    namespace of the node (default: none). A params file keyed `rust_node:` means
                 `/rust_node` only, so under a namespace its parameters are handed to the node
                 again as a dictionary, which launch_ros writes under the node's full name.
    camera_ns    namespace of the camera topics (default `rig`; see "Camera remaps").
    rviz         true: start RViz with config/rust.rviz (default false).
    autostart    true: configure, then activate, the node as soon as it is up (default true).

Camera remaps: the camera topics in the params file (`camera_topics`) are relative,
`rig/cam0/image_raw` ... `rig/cam5/image_raw`, so they follow `namespace` without any remap, and
the node also subscribes to each camera's `.../camera_info`. With the default `camera_ns:=rig`
no remap is made. `camera_ns:=front` remaps every camera topic of the params file that starts
with `rig/` (and its camera_info) to `front/...`; `camera_ns:=/sensors/rig` to an absolute name.
Other layouts: copy config/node.yaml, list your topics in `camera_topics` (and
`reference_camera`), and pass `params_file:=`; or include this file from your own launch file
inside a `GroupAction` with `launch_ros.actions.SetRemap(src='rig/cam0/image_raw',
dst='/my/camera/image_raw')` per topic.

config/rust.rviz shows the default names: no namespace, cameras `/rig/cam{0..5}/image_raw`, node
outputs under `/rust_node/`, fixed frame `rig_cam0_optical_frame` (the frame of the relative
poses: the reference camera's).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition
from rust_perception.node_config import params_file_values

DEFAULT_CAMERA_NS = 'rig'


def _camera_remaps(camera_topics, camera_ns):
    """(from, to) remaps moving `rig/...` camera topics and their camera_info to `camera_ns`."""
    if camera_ns == DEFAULT_CAMERA_NS:
        return []
    remaps = []
    for topic in camera_topics:
        # camera_info beside the image topic, without its transport (image_transport's convention)
        for source in (topic, topic.removesuffix('/compressed').rsplit('/', 1)[0] + '/camera_info'):
            head, sep, rest = source.lstrip('/').partition('/')
            remap = (source, f"{camera_ns.rstrip('/')}/{rest}" if camera_ns else rest)
            if head == DEFAULT_CAMERA_NS and sep and remap not in remaps:
                remaps.append(remap)
    return remaps


def _overrides(model_dir, backend):
    """Parameters the launch arguments override; an empty model_dir keeps the params file's."""
    overrides = {'backend': backend}
    if model_dir:
        overrides['model_dir'] = model_dir
    return overrides


def _launch_node(context):
    params_file = LaunchConfiguration('params_file').perform(context)
    file_parameters = params_file_values(params_file)  # as the node and rust_offline read it
    parameters = [params_file]
    if LaunchConfiguration('namespace').perform(context).strip('/'):
        parameters.append(file_parameters)
    parameters.append(_overrides(LaunchConfiguration('model_dir').perform(context),
                                 LaunchConfiguration('backend').perform(context)))
    remappings = _camera_remaps(file_parameters.get('camera_topics', []),
                                LaunchConfiguration('camera_ns').perform(context))

    node = LifecycleNode(
        package='rust_perception',
        executable='rust_node',
        name='rust_node',
        namespace=LaunchConfiguration('namespace'),
        parameters=parameters,
        remappings=remappings,
        output='screen',
    )
    autostart = IfCondition(LaunchConfiguration('autostart'))
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node),
                          transition_id=Transition.TRANSITION_CONFIGURE),
        condition=autostart,
    )
    # Only after configure: a later deactivate (also inactive) must not re-activate the node.
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state='configuring',
            goal_state='inactive',
            entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                                  transition_id=Transition.TRANSITION_ACTIVATE))],
        ),
        condition=autostart,
    )
    return [node, activate_when_configured, configure]


def generate_launch_description():
    rviz_config = PathJoinSubstitution([FindPackageShare('rust_perception'), 'config', 'rust.rviz'])
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([FindPackageShare('rust_perception'), 'config', 'node.yaml']),
            description='parameters file of rust_node'),
        DeclareLaunchArgument(
            'model_dir', default_value='',
            description="model directory (from rust_export); empty: the params file's model_dir"),
        DeclareLaunchArgument(
            'backend', default_value='auto', description='auto | tensorrt | onnxruntime | torch'),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node'),
        DeclareLaunchArgument(
            'camera_ns', default_value=DEFAULT_CAMERA_NS,
            description='namespace of the camera topics: remaps the params file\'s rig/... topics'),
        DeclareLaunchArgument('rviz', default_value='false', description='start RViz with config/rust.rviz'),
        DeclareLaunchArgument(
            'autostart', default_value='true', description='configure and activate the node at start'),
        OpaqueFunction(function=_launch_node),
        Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', rviz_config],
            condition=IfCondition(LaunchConfiguration('rviz')),
            output='screen',
        ),
    ])
