"""The tf.distribute strategy of ``-devices``: one CPU, N logical CPUs, every GPU, or the listed GPU ids."""
from __future__ import annotations


def parse_devices(value: str) -> tuple[str, int | list[int]]:
    """``cpu`` -> ('cpu', 1); ``cpu:N`` -> ('cpu', N); ``all`` -> ('all', 0); ``0,1`` -> ('gpu', [0, 1])."""
    value = value.strip().lower()
    if value == 'all':
        return 'all', 0
    if value == 'cpu' or value.startswith('cpu:'):
        count = value.partition(':')[2] or '1'
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f'-devices {value}: the CPU count after "cpu:" must be an integer >= 1')
        return 'cpu', int(count)
    ids = [part.strip() for part in value.split(',')]
    if not all(part.isdigit() for part in ids):
        raise ValueError(f'-devices {value}: expected cpu, cpu:N, all, or GPU ids such as 0,1')
    return 'gpu', [int(part) for part in ids]


def make_strategy(devices: str):
    """The tf.distribute strategy for ``devices``; ``cpu:N`` splits the CPU into N logical devices."""
    from ..model.tensorflow_quiet import tf
    kind, which = parse_devices(devices)
    if kind == 'cpu' and which > 1:
        cpu = tf.config.list_physical_devices('CPU')[0]
        logical = tf.config.get_logical_device_configuration(cpu)
        if not logical or len(logical) != which:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * which)
    if kind == 'cpu':
        names = [f'/cpu:{n}' for n in range(which)]
    else:
        present = list(range(len(tf.config.list_physical_devices('GPU'))))
        wanted = present if kind == 'all' else which
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise ValueError(f'-devices {devices}: no GPU {missing} on this machine (GPUs: {present or "none"})')
        names = [f'/gpu:{n}' for n in wanted] or ['/cpu:0']
    if len(names) == 1:
        return tf.distribute.OneDeviceStrategy(names[0])
    return tf.distribute.MirroredStrategy(names)
