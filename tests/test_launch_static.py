"""Static checks of launch/rust.launch.py, config/node.yaml and config/rust.rviz against the node
and setup.py. launch, launch_ros and rviz2 cannot be installed here, so nothing ROS is imported:
the launch file is compiled and read as an AST, the configs with yaml.safe_load, and the node's
parameters and topics come from the ROS-free tables it is made from (`node_config`, `outputs`).

Each check is a function returning a list of problems; the tests assert there are none, and
`test_*_check_catches` break a copy of the files (a typo in a topic, a key, a name) and assert that
the check reports it, so no check passes vacuously.
"""

import ast
import fnmatch
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import ROOT
from ros2_rust_node.naming import camera_info_topic, camera_name
from ros2_rust_node.outputs import OUTPUTS, output_topics
from rust_perception.errors import ConfigError
from rust_perception.node_config import SETTINGS, defaults, validate

LAUNCH = ROOT / "launch" / "rust.launch.py"
NODE_PY = ROOT / "ros2_rust_node" / "node.py"
NODE_YAML = ROOT / "config" / "node.yaml"
RVIZ = ROOT / "config" / "rust.rviz"
SETUP = ROOT / "setup.py"
PACKAGE = "rust_perception"
NODE = "rust_node"

LAUNCH_ARGUMENTS = {"params_file", "model_dir", "backend", "namespace", "camera_ns", "rviz", "autostart"}
LITERAL_DEFAULTS = {"model_dir": "", "backend": "auto", "namespace": "", "camera_ns": "rig", "rviz": "false",
                    "autostart": "true"}
# RViz display class → message types it can show.
DISPLAY_TYPES = {"rviz_default_plugins/Image": {"Image"}, "rviz_default_plugins/Camera": {"Image"},
                 "rviz_default_plugins/PoseWithCovariance": {"PoseWithCovarianceStamped"},
                 "rviz_default_plugins/MarkerArray": {"MarkerArray"}}


# ---------------------------------------------------------------------------------------------- helpers
def module_constants(tree: ast.Module) -> dict:
    """Module-level `NAME = <literal>` assignments."""
    out = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                out[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                pass
    return out


def text(node, consts: dict | None = None, placeholders: bool = False):
    """The string an expression spells (a constant, a module constant, an f-string of those), or None.
    With `placeholders`, an f-string's unresolved `{x}` stays `{x}`."""
    consts = consts or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(consts.get(node.id), str):
        return consts[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                part = text(value.value, consts)
                if part is None and placeholders and isinstance(value.value, ast.Name):
                    part = "{" + value.value.id + "}"
                value = part
            else:
                value = text(value, consts)
            if value is None:
                return None
            parts.append(value)
        return "".join(parts)
    return None


def call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def calls(tree, *names) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) in names]


def kwarg(call: ast.Call, key: str):
    return next((k.value for k in call.keywords if k.arg == key), None)


def first_arg(call: ast.Call, key: str | None = None):
    return call.args[0] if call.args else kwarg(call, key) if key else None


def is_config(node, name: str) -> bool:
    """`LaunchConfiguration('<name>')`."""
    return isinstance(node, ast.Call) and call_name(node) == "LaunchConfiguration" and \
        text(first_arg(node, "variable_name")) == name


def assigned(tree, name: str) -> list:
    """Values assigned to `name` anywhere in the module."""
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]


def resolve(tree, node) -> list:
    """An expression, or for a name the values assigned to it."""
    return assigned(tree, node.id) if isinstance(node, ast.Name) else [node]


def setup_call():
    tree = ast.parse(SETUP.read_text())
    (call,) = calls(tree, "setup")
    return call, module_constants(tree)


def setup_data_files() -> dict:
    """setup.py's data_files: install folder → source glob patterns (plain paths included)."""
    call, consts = setup_call()

    def patterns(node):
        if isinstance(node, ast.BinOp):
            return patterns(node.left) + patterns(node.right)
        if isinstance(node, ast.List):
            return [p for elt in node.elts for p in patterns(elt)]
        if isinstance(node, ast.Call) and call_name(node) == "glob":
            return [text(node.args[0], consts)]
        return [text(node, consts)]

    return {text(entry.elts[0], consts): patterns(entry.elts[1]) for entry in kwarg(call, "data_files").elts}


def console_scripts() -> dict:
    """setup.py's console scripts: name → 'module:function'."""
    call, consts = setup_call()
    entry_points = kwarg(call, "entry_points")
    (scripts,) = [v for k, v in zip(entry_points.keys, entry_points.values) if text(k) == "console_scripts"]
    return dict((part.strip() for part in text(s, consts).split("=", 1)) for s in scripts.elts)


def installed(path: str) -> bool:
    """Whether setup.py's data_files install the repo file `path` into share/<package>/<its folder>."""
    folder = path.rsplit("/", 1)[0]
    return any(fnmatch.fnmatch(path, pattern) for pattern in setup_data_files().get(f"share/{PACKAGE}/{folder}", []))


def load_node_yaml(source: str | None = None) -> dict:
    return yaml.safe_load(NODE_YAML.read_text() if source is None else source)


def node_yaml_parameters() -> dict:
    return load_node_yaml()[NODE]["ros__parameters"]


def absolute(topic: str) -> str:
    """A topic of the node, launched without namespace, as a full name."""
    return topic if topic.startswith("/") else "/" + topic


def input_topics(params: dict) -> dict:
    """Camera topics the node subscribes to → message type."""
    return {absolute(t): "CompressedImage" if t.endswith("/compressed") else "Image" for t in params["camera_topics"]}


def published_topics(params: dict) -> dict:
    """Topics the node publishes with these parameters (all heads on) → message type (its name)."""
    topics = output_topics(params["camera_topics"], params.get("reference_camera") or params["camera_topics"][0],
                           {**defaults(), **params}, {"epe": True, "segmentation": True})
    return {topic.replace("~", f"/{NODE}", 1): OUTPUTS[key].msgtype.rsplit("/", 1)[1]
            for (key, _camera), topic in topics.items()}


def launch_helpers(source: str) -> dict:
    """The launch file's literal constants and functions, defined without its launch imports (only
    `yaml`): the pure helpers can then be called; launch objects are never touched."""
    tree = ast.parse(source)
    body = [stmt for stmt in tree.body if isinstance(stmt, ast.FunctionDef) or (
        isinstance(stmt, ast.Assign) and ast.unparse(stmt.targets[0]) in module_constants(tree))]
    namespace = {"yaml": yaml}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(LAUNCH), "exec"), namespace)  # noqa: S102
    return namespace


# ---------------------------------------------------------------------------------------------- (a) launch file
def launch_compile_problems(source: str) -> list[str]:
    try:
        tree = compile(source, str(LAUNCH), "exec", ast.PyCF_ONLY_AST)
        compile(source, str(LAUNCH), "exec")
    except SyntaxError as exc:
        return [f"does not compile: {exc}"]
    if not any(isinstance(s, ast.FunctionDef) and s.name == "generate_launch_description" for s in tree.body):
        return ["no top-level generate_launch_description()"]
    return []


def launch_argument_problems(tree: ast.Module) -> list[str]:
    consts = module_constants(tree)
    declared = {text(first_arg(c, "name"), consts): c for c in calls(tree, "DeclareLaunchArgument")}
    used = {text(first_arg(c, "variable_name"), consts) for c in calls(tree, "LaunchConfiguration")}
    problems = [f"launch arguments {sorted(declared.keys() ^ LAUNCH_ARGUMENTS)} differ from {sorted(LAUNCH_ARGUMENTS)}"
                ] if declared.keys() != LAUNCH_ARGUMENTS else []
    problems += [f"argument {n!r} is declared but never read by a LaunchConfiguration" for n in declared.keys() - used]
    problems += [f"LaunchConfiguration({n!r}) reads an undeclared argument" for n in used - declared.keys()]
    for name, expected in LITERAL_DEFAULTS.items():
        if name in declared and text(kwarg(declared[name], "default_value"), consts) != expected:
            problems.append(f"argument {name!r}: default is not {expected!r}")
    if "params_file" in declared:
        default = kwarg(declared["params_file"], "default_value")
        if share_config_files(default) != {"node.yaml"}:
            problems.append("params_file's default is not <share of rust_perception>/config/node.yaml")
    backends = SETTINGS["backend"].choices
    if "backend" in declared and text(kwarg(declared["backend"], "default_value"), consts) not in backends:
        problems.append(f"the backend default is none of the node's {sorted(backends)}")
    return problems


def share_config_files(tree) -> set:
    """Files named as `<package share>/config/<file>` (PathJoinSubstitution or os.path.join), with
    a problem string for a package share other than this package's."""
    out = set()
    for call in calls(tree, "PathJoinSubstitution", "join"):
        parts = call.args[0].elts if call_name(call) == "PathJoinSubstitution" else call.args
        share = [p for p in parts if isinstance(p, ast.Call)
                 and call_name(p) in ("FindPackageShare", "get_package_share_directory")]
        words = [text(p) for p in parts]
        if "config" in words and words.index("config") + 1 < len(words):
            out.add(words[words.index("config") + 1])
            if [text(first_arg(s, "package")) for s in share] != [PACKAGE]:
                out.add(f"<not in the share of {PACKAGE}>")
    return out


def launch_node_problems(tree: ast.Module) -> list[str]:
    consts = module_constants(tree)
    nodes = calls(tree, "LifecycleNode")
    if len(nodes) != 1:
        return [f"{len(nodes)} LifecycleNode actions, expected 1"]
    (node,) = nodes
    problems = []
    package, executable, name = (text(kwarg(node, k), consts) for k in ("package", "executable", "name"))
    setup, setup_consts = setup_call()
    packages = {text(kwarg(setup, "name"), setup_consts),
                ET.parse(ROOT / "package.xml").getroot().findtext("name"), PACKAGE}
    if {package} != packages:
        problems.append(f"package {package!r}: setup.py / package.xml name the package {sorted(packages)}")
    target = console_scripts().get(executable)
    if target != "ros2_rust_node.node:main":
        problems.append(f"executable {executable!r} is not setup.py's console script for ros2_rust_node.node:main")
    elif not any(isinstance(s, ast.FunctionDef) and s.name == "main" for s in ast.parse(NODE_PY.read_text()).body):
        problems.append("ros2_rust_node/node.py has no main()")
    if name != NODE or set(load_node_yaml()) != {NODE}:
        problems.append(f"node name {name!r}: config/node.yaml's parameters are for {sorted(load_node_yaml())}")
    if not is_config(kwarg(node, "namespace"), "namespace"):
        problems.append("namespace is not LaunchConfiguration('namespace')")
    if kwarg(node, "parameters") is None:
        problems.append("the node gets no parameters")
    return problems


def launch_parameter_key_problems(tree: ast.Module) -> list[str]:
    """Every parameter name the launch file writes — keys of dict literals, `d['key'] = ...` — is one
    the node declares; model_dir and backend are among them (the arguments that override them)."""
    keys = {text(k) for d in ast.walk(tree) if isinstance(d, ast.Dict) for k in d.keys if text(k) is not None}
    keys |= {text(t.slice) for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Subscript) and text(t.slice) is not None}
    problems = [f"parameter {k!r} is not declared by the node" for k in sorted(keys - SETTINGS.keys())]
    problems += [f"the launch file never sets {k!r}" for k in sorted({"model_dir", "backend"} - keys)]
    return problems


def launch_config_file_problems(tree: ast.Module) -> list[str]:
    files = share_config_files(tree)
    problems = [f for f in files if f.startswith("<")]
    files -= set(problems)
    if not {"node.yaml", "rust.rviz"} <= files:
        problems.append(f"config files referenced: {sorted(files)}; expected node.yaml and rust.rviz")
    for file in sorted(files):
        if not (ROOT / "config" / file).is_file():
            problems.append(f"config/{file} does not exist")
        elif not installed(f"config/{file}"):
            problems.append(f"config/{file} is not installed by setup.py's data_files")
    if not installed(f"launch/{LAUNCH.name}"):
        problems.append(f"launch/{LAUNCH.name} is not installed by setup.py's data_files")
    return problems


def launch_lifecycle_problems(tree: ast.Module) -> list[str]:
    """autostart: ChangeState configure at start, and activate once configure reached inactive, both
    under IfCondition(LaunchConfiguration('autostart'))."""
    def transition(call):
        node = kwarg(call, "transition_id")
        return node.attr if isinstance(node, ast.Attribute) else None

    def conditioned(call):
        condition = [c for v in resolve(tree, kwarg(call, "condition") or ast.Constant(None)) for c in [v]
                     if isinstance(c, ast.Call) and call_name(c) == "IfCondition"]
        return any(is_config(first_arg(c, "predicate_expression"), "autostart") for c in condition)

    problems = []
    emits = {transition(c): e for e in calls(tree, "EmitEvent") for c in calls(e, "ChangeState")}
    handlers = calls(tree, "OnStateTransition")
    configure = emits.get("TRANSITION_CONFIGURE")
    if configure is None or not conditioned(configure):
        problems.append("no EmitEvent(ChangeState(TRANSITION_CONFIGURE)) under the autostart condition")
    activations = [h for h in handlers if text(kwarg(h, "goal_state")) == "inactive"
                   and text(kwarg(h, "start_state")) in (None, "configuring")
                   and "TRANSITION_ACTIVATE" in {transition(c) for c in calls(h, "ChangeState")}]
    if not activations:
        problems.append("no OnStateTransition(goal_state='inactive') that emits ChangeState(TRANSITION_ACTIVATE)")
    registers = [r for r in calls(tree, "RegisterEventHandler") if any(calls(r, "OnStateTransition"))]
    if not registers or not all(conditioned(r) for r in registers):
        problems.append("the OnStateTransition handler is not registered under the autostart condition")
    return problems


def launch_rviz_problems(tree: ast.Module) -> list[str]:
    rviz = [c for c in calls(tree, "Node") if text(kwarg(c, "package")) == "rviz2"]
    if len(rviz) != 1:
        return [f"{len(rviz)} rviz2 Node actions, expected 1"]
    (node,) = rviz
    problems = [] if text(kwarg(node, "executable")) == "rviz2" else ["the rviz2 Node's executable is not rviz2"]
    condition = kwarg(node, "condition")
    if not (isinstance(condition, ast.Call) and call_name(condition) == "IfCondition"
            and is_config(first_arg(condition, "predicate_expression"), "rviz")):
        problems.append("rviz2 is not under IfCondition(LaunchConfiguration('rviz'))")
    arguments = kwarg(node, "arguments")
    elts = arguments.elts if isinstance(arguments, ast.List) else []
    configs = [share_config_files(ast.Module(body=[ast.Expr(v)], type_ignores=[]))
               for e in elts[1:2] for v in resolve(tree, e)]
    if [text(e) for e in elts[:1]] != ["-d"] or configs != [{"rust.rviz"}]:
        problems.append("rviz2's arguments are not ['-d', <share>/config/rust.rviz]")
    return problems


def launch_import_problems(tree: ast.Module) -> list[str]:
    """What the launch file imports, package.xml declares (exec_depend), as rosdep keys (this
    package itself aside)."""
    rosdep = {"yaml": "python3-yaml"}
    depends = {e.text for e in ET.parse(ROOT / "package.xml").getroot().findall("exec_depend")}
    modules = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    roots = {m.split(".")[0] for m in modules}
    return [f"imports {r!r} but package.xml has no <exec_depend>{rosdep.get(r, r)}</exec_depend>"
            for r in sorted(roots - {PACKAGE}) if rosdep.get(r, r) not in depends]


LAUNCH_CHECKS = [launch_import_problems, launch_argument_problems, launch_node_problems, launch_parameter_key_problems,
                 launch_config_file_problems, launch_lifecycle_problems, launch_rviz_problems]


def test_launch_file_compiles():
    assert launch_compile_problems(LAUNCH.read_text()) == []


@pytest.mark.parametrize("check", LAUNCH_CHECKS, ids=lambda f: f.__name__)
def test_launch_file(check):
    assert check(ast.parse(LAUNCH.read_text())) == []


def test_launch_overrides_model_dir_only_when_given():
    helpers = launch_helpers(LAUNCH.read_text())
    assert helpers["_overrides"]("", "auto") == {"backend": "auto"}, "an empty model_dir must keep the file's"
    overrides = helpers["_overrides"]("/models/x", "torch")
    assert overrides == {"backend": "torch", "model_dir": "/models/x"}
    assert overrides.keys() <= SETTINGS.keys()


def test_launch_camera_remaps():
    remaps = launch_helpers(LAUNCH.read_text())["_camera_remaps"]
    topics = node_yaml_parameters()["camera_topics"]
    default_ns = LITERAL_DEFAULTS["camera_ns"]
    assert {t.lstrip("/").split("/")[0] for t in topics} == {default_ns}, \
        "node.yaml's cameras are not all under the default camera_ns"
    assert remaps(topics, default_ns) == []
    front = dict(remaps(topics, "front"))
    for topic in topics:
        device = topic.rsplit("/", 1)[0]
        assert front[topic] == "front" + topic[len(default_ns):]
        assert front[device + "/camera_info"] == "front" + device[len(default_ns):] + "/camera_info"
    assert len(front) == 2 * len(topics)
    assert dict(remaps(topics, "/sensors/rig/"))[topics[0]] == "/sensors/rig" + topics[0][len(default_ns):]
    assert dict(remaps(topics, ""))[topics[0]] == topics[0][len(default_ns) + 1:]
    assert remaps(["cam0/image_raw"], "front") == []
    # a compressed camera's camera_info is image_transport's, as the node subscribes to it
    compressed = dict(remaps(["rig/cam0/image_raw/compressed"], "front"))
    assert compressed == {"rig/cam0/image_raw/compressed": "front/cam0/image_raw/compressed",
                          camera_info_topic("rig/cam0/image_raw/compressed"): "front/cam0/camera_info"}


LAUNCH_MUTATIONS = [  # (text in the launch file, replacement, the check that must complain)
    ("def generate_launch_description():", "def generate_launch_description(:", "compile"),
    ("from launch_ros.substitutions import", "from nav2_common.substitutions import", "launch_import_problems"),
    ("LaunchConfiguration('camera_ns')", "LaunchConfiguration('camera_nss')", "launch_argument_problems"),
    ("DeclareLaunchArgument('namespace'", "DeclareLaunchArgument('name_space'", "launch_argument_problems"),
    ("default_value='auto'", "default_value='cuda'", "launch_argument_problems"),
    ("'config', 'node.yaml'", "'cfg', 'node.yaml'", "launch_argument_problems"),
    ("executable='rust_node'", "executable='rust_nodes'", "launch_node_problems"),
    ("package='rust_perception'", "package='rust_perceptio'", "launch_node_problems"),
    ("name='rust_node'", "name='rust'", "launch_node_problems"),
    ("namespace=LaunchConfiguration('namespace')", "namespace=''", "launch_node_problems"),
    ("overrides['model_dir']", "overrides['model_directory']", "launch_parameter_key_problems"),
    ("{'backend': backend}", "{'backends': backend}", "launch_parameter_key_problems"),
    ("'config', 'rust.rviz'", "'config', 'rust_view.rviz'", "launch_config_file_problems"),
    ("FindPackageShare('rust_perception'), 'config', 'rust.rviz'", "FindPackageShare('rviz2'), 'config', 'rust.rviz'",
     "launch_config_file_problems"),
    ("Transition.TRANSITION_ACTIVATE", "Transition.TRANSITION_CLEANUP", "launch_lifecycle_problems"),
    ("goal_state='inactive'", "goal_state='active'", "launch_lifecycle_problems"),
    ("IfCondition(LaunchConfiguration('autostart'))", "IfCondition(LaunchConfiguration('rviz'))",
     "launch_lifecycle_problems"),
    ("condition=IfCondition(LaunchConfiguration('rviz'))", "condition=None", "launch_rviz_problems"),
    ("arguments=['-d', rviz_config]", "arguments=[rviz_config]", "launch_rviz_problems"),
]


@pytest.mark.parametrize("old,new,check", LAUNCH_MUTATIONS, ids=[f"{c}:{new}" for _, new, c in LAUNCH_MUTATIONS])
def test_launch_check_catches(old, new, check):
    source = LAUNCH.read_text()
    assert source.count(old) >= 1, f"{old!r} is not in the launch file any more: update the mutation"
    broken = source.replace(old, new, 1)
    if check == "compile":
        assert launch_compile_problems(broken)
    else:
        assert globals()[check](ast.parse(broken)), f"{check} misses {old!r} → {new!r}"


# ---------------------------------------------------------------------------------------------- (b) node.yaml
def node_yaml_problems(data: dict) -> list[str]:
    """node.yaml sets every parameter of the node (it is the documented example) to a value the
    node accepts, for cameras with distinct output topics."""
    if set(data) != {NODE} or set(data[NODE]) != {"ros__parameters"}:
        return [f"expected only {NODE}: ros__parameters:, got {data!r:.80}"]
    params = data[NODE]["ros__parameters"]
    problems = [f"parameter {k!r} is missing from node.yaml" for k in SETTINGS if k not in params]
    try:
        validate(params)
        published_topics(params)
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def test_node_yaml_sets_declared_parameters_with_their_types():
    assert node_yaml_problems(load_node_yaml()) == []


NODE_YAML_MUTATIONS = [  # (key, value) set in a copy of node.yaml's parameters; None: delete the key
    ("render_rat", 2.0), ("render_rate", 2), ("render_size", 0.0), ("publish_segmentation", "true"),
    ("model_dir", 3), ("camera_topics", ["rig/cam0/image_raw", 1]), ("camera_topics", "rig/cam0/image_raw"),
    ("backend", "cuda"), ("input_qos", "best_effort"), ("reference_camera", "rig/cam9/image_raw"),
    ("camera_topics", ["rig/cam0/image_raw", "rig/cam0/image"]), ("threads", None),
    ("novel_view_motion", "sideways"), ("render_rate", 0.0),
]


@pytest.mark.parametrize("key,value", NODE_YAML_MUTATIONS)
def test_node_yaml_check_catches(key, value):
    data = load_node_yaml()
    params = data[NODE]["ros__parameters"]
    params.pop(key) if value is None else params.__setitem__(key, value)
    assert node_yaml_problems(data)


def test_node_yaml_check_catches_another_node_name():
    data = load_node_yaml()
    assert node_yaml_problems({"rust": data[NODE]})
    assert node_yaml_problems({NODE: {"parameters": data[NODE]["ros__parameters"]}})


# ---------------------------------------------------------------------------------------------- (c) rust.rviz
def rviz_displays(rviz: dict) -> list[dict]:
    """Displays, including those inside display groups."""
    out, todo = [], list(rviz["Visualization Manager"]["Displays"])
    while todo:
        display = todo.pop(0)
        out.append(display)
        todo += display.get("Displays") or []
    return out


def rviz_topic(display: dict):
    topic = display.get("Topic")
    return topic.get("Value") if isinstance(topic, dict) else topic


def rviz_problems(rviz: dict, params: dict) -> list[str]:
    problems = [f"panel class {p.get('Class')!r} is not from rviz_common"
                for p in rviz.get("Panels", []) if not str(p.get("Class")).startswith("rviz_common/")]
    inputs, outputs = input_topics(params), published_topics(params)
    reference = params.get("reference_camera") or params["camera_topics"][0]
    frame = rviz["Visualization Manager"]["Global Options"]["Fixed Frame"]
    if frame != f"{camera_name(reference)}_optical_frame":  # the frame_id of the relative poses
        problems.append(f"Fixed Frame {frame!r} is not the reference camera's optical frame")
    output_reliable = params.get("output_qos", "default") != "sensor_data"
    for display in rviz_displays(rviz):
        cls, topic, name = display.get("Class", ""), rviz_topic(display), display.get("Name")
        if not cls.startswith("rviz_default_plugins/"):
            problems.append(f"display {name!r}: class {cls!r} is not from rviz_default_plugins")
        if topic is None:
            continue
        kind = inputs.get(topic) or outputs.get(topic)
        if kind is None:
            problems.append(f"display {name!r}: {topic!r} is neither a camera input nor published by the node")
        elif kind not in DISPLAY_TYPES.get(cls, ()):
            problems.append(f"display {name!r}: {cls} cannot show {topic!r} ({kind})")
        qos = display["Topic"] if isinstance(display["Topic"], dict) else {}
        reliable = qos.get("Reliability Policy", "Reliable") == "Reliable"
        if reliable and (topic in inputs or not output_reliable):  # camera drivers may publish best effort
            problems.append(f"display {name!r}: a reliable subscription gets nothing from a best-effort publisher")
        if qos.get("Durability Policy", "Volatile") != "Volatile":
            problems.append(f"display {name!r}: the node and cameras publish volatile, not transient local")
        if cls == "rviz_default_plugins/PoseWithCovariance" and display.get("Shape") != "Arrow":
            problems.append(f"display {name!r}: the relative pose is not shown as an arrow")
    shown = {rviz_topic(d) for d in rviz_displays(rviz)}
    wanted = set(inputs) | {t for t in outputs
                            if t.endswith(("/novel_view/image", "/color", "/camera_poses")) or "/relative_pose/" in t}
    problems += [f"{t} is not shown" for t in sorted(wanted - shown)]
    return problems


def test_rviz_config_shows_cameras_and_node_outputs():
    assert rviz_problems(yaml.safe_load(RVIZ.read_text()), node_yaml_parameters()) == []


RVIZ_MUTATIONS = [  # (text in rust.rviz, replacement)
    ("/rust_node/relative_pose/rig_cam1", "/rust_node/relative_pose/rig_cam_1"),
    ("/rust_node/segmentation/rig_cam2/color", "/rust_node/segmentation/rig_cam2/colour"),
    ("/rig/cam3/image_raw", "/rig/cam3/image"),
    ("/rust_node/novel_view/image", "/rust/novel_view/image"),
    ("/rust_node/relative_pose/rig_cam1", "/rust_node/relative_pose/rig_cam0"),  # the reference has none
    ("Class: rviz_default_plugins/Image", "Class: rviz_plugins/Image"),
    ("Class: rviz_default_plugins/PoseWithCovariance", "Class: rviz_default_plugins/Pose"),
    ("Value: /rust_node/relative_pose/rig_cam2", "Value: /rust_node/segmentation/rig_cam2/image"),
    ("Fixed Frame: rig_cam0_optical_frame", "Fixed Frame: map"),
    ("Reliability Policy: Best Effort", "Reliability Policy: Reliable"),
    ("Durability Policy: Volatile", "Durability Policy: Transient Local"),
    ("Shape: Arrow", "Shape: Axes"),
    ("Class: rviz_common/Displays", "Class: rviz/Displays"),
    ("Value: /rust_node/camera_poses", "Value: /rust_node/camera_pose"),
    ("Class: rviz_default_plugins/MarkerArray", "Class: rviz_default_plugins/Marker"),
]


@pytest.mark.parametrize("old,new", RVIZ_MUTATIONS, ids=[new for _, new in RVIZ_MUTATIONS])
def test_rviz_check_catches(old, new):
    source = RVIZ.read_text()
    assert old in source, f"{old!r} is not in rust.rviz any more: update the mutation"
    assert rviz_problems(yaml.safe_load(source.replace(old, new, 1)), node_yaml_parameters())


def test_rviz_check_follows_node_yaml():
    """The published topics come from node.yaml: other camera topics → other expected topics."""
    params = dict(node_yaml_parameters(), camera_topics=[f"front/cam{i}/image_raw" for i in range(6)],
                  reference_camera="front/cam0/image_raw")
    assert rviz_problems(yaml.safe_load(RVIZ.read_text()), params)
