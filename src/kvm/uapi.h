// <linux/kvm.h> for C++. Debian 12's UAPI headers (6.1) declare flexible arrays through an empty struct, which is
// 1 byte in C++ (0 in C): struct sizes grow by 4 and the sizes encoded in ioctl numbers (KVM_SET_CPUID2,
// KVM_SET_MSRS, ...) no longer match the kernel's, so every such ioctl fails with EINVAL. Later kernels fixed the
// macro for C++ in the same way as here; the static_asserts catch any header where it matters.
#pragma once

#include <linux/stddef.h>

#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

#include <linux/kvm.h>

static_assert(sizeof(kvm_cpuid2) == 8, "kvm_cpuid2 must match the kernel's layout");
static_assert(sizeof(kvm_msrs) == 8, "kvm_msrs must match the kernel's layout");
static_assert(sizeof(kvm_stats_desc) == 16, "kvm_stats_desc must match the kernel's layout");
static_assert(sizeof(kvm_coalesced_mmio_ring) == 8, "kvm_coalesced_mmio_ring must match the kernel's layout");
static_assert(sizeof(kvm_irq_routing) == 8, "kvm_irq_routing must match the kernel's layout");
