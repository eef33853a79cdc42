"""Which device each worker runs on: the CPU, GPUs named in -device_map, or free GPUs found by GPUtil."""


def _free_gpus(count: int, logger) -> list[int]:
    try:
        import GPUtil
        return GPUtil.getAvailable(order='memory', limit=count, maxLoad=0.9, maxMemory=0.9)
    except Exception as error:  # no driver, no nvidia-smi, or GPUtil missing: all mean "no GPU"
        logger.debug('GPUtil found no GPU: %s', error)
        return []


def _all_gpus(logger) -> list[int]:
    try:
        import GPUtil
        return [gpu.id for gpu in GPUtil.getGPUs()]
    except Exception as error:
        logger.debug('GPUtil found no GPU: %s', error)
        return []


def plan_devices(num_worker: int, cpu: bool, device_map: list[int], logger) -> list[int | None]:
    """One entry per worker: a GPU id, or None for the CPU. GPUs are reused round-robin."""
    if cpu:
        return [None] * num_worker
    if device_map:
        present = set(_all_gpus(logger))
        missing = [gpu for gpu in device_map if gpu not in present]
        if missing:
            logger.warning('-device_map names GPU %s but this machine has %s; falling back to the CPU',
                           missing, sorted(present) or 'no GPU')
            return [None] * num_worker
        gpus = device_map
    else:
        gpus = _free_gpus(num_worker, logger)
        if not gpus:
            logger.warning('no free GPU found, so every worker runs on the CPU (pass -cpu to say so explicitly)')
            return [None] * num_worker
    return [gpus[index % len(gpus)] for index in range(num_worker)]
