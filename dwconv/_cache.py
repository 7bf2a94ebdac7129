"""What this machine's caches hold, as Linux lists them (read once, when the kernels load: in
Python, as it is no hot path; compiled, it cost the extension 25 KB)."""
import glob
import os

# A VM's vCPU can count on at most about this many bytes of the last-level cache: a VM sees the
# whole L3 of its host listed, shared by its few vCPUs, yet other tenants fill most of it (on 2
# vCPUs of a Xeon listed as sharing 105 MB, copies ran at DRAM speed from 12-16 MB up; on 2 of an
# AMD EPYC (Zen 5) listed as sharing 32 MB, at L3 speed to 8 MB copied into 8 MB, 0.7x of it from
# 12 MB). Results larger than half of it stream (STREAMING_BYTES): at 4 MB per vCPU, 4.8-6.4 MB
# results streamed there ran 1.15-1.75x slower than stored in the cache (the NHWC input gradient of
# 112x112x96 at stride 2, 16x28x28x192 and 4x112x112x32 forwards).
CACHE_PER_CPU = 8 << 20


def count_cpus(cpu_list):
    """The number of CPUs in a Linux CPU list such as "0-3,8"."""
    n = 0
    for part in cpu_list.strip().split(","):
        first, _, last = part.partition("-")
        n += int(last or first) - int(first) + 1
    return n


def last_level_cache_bytes():
    """The bytes of the last-level cache this process can count on: its size as Linux lists it, at
    most CACHE_PER_CPU per CPU listed as sharing it (32 MiB where Linux does not say: Python's
    os.sysconf knows no cache names)."""
    levels = {}
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(index, "level")) as level, open(os.path.join(index, "size")) as size, \
                    open(os.path.join(index, "shared_cpu_list")) as shared:
                text = size.read().strip()
                nbytes = int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1:], 0)
                levels[int(level.read())] = min(nbytes, count_cpus(shared.read()) * CACHE_PER_CPU)
        except (OSError, ValueError):
            continue
    return levels[max(levels)] if levels else 32 << 20
