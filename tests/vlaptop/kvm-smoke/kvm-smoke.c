/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kvm-smoke: the smallest real guest. It creates a VM on /dev/kvm, loads a
 * few bytes of real-mode code that write a message to port 0x3f8 one byte
 * per OUT and then HLT, runs it and prints what the guest wrote.
 *
 *   kvm-smoke [MESSAGE]        (default "hello from kvm")
 *
 * Exit status: 0 when the guest wrote the message and halted, 1 otherwise.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_MEM_SIZE 0x10000
#define CODE_ADDR      0x1000
#define SERIAL_PORT    0x3f8
#define RUN_TIMEOUT_S  20

struct vm {
    int kvm;
    int vm;
    int vcpu;
    uint8_t *mem;
    struct kvm_run *run;
    size_t run_size;
};

static int fail(const char *what)
{
    fprintf(stderr, "kvm-smoke: %s: %s\n", what, strerror(errno));
    return -1;
}

static void on_alarm(int sig)
{
    (void)sig; /* only there to interrupt KVM_RUN */
}

/* mov dx, 0x3f8; then per byte: mov al, BYTE; out dx, al; finally hlt. */
static size_t emit_code(uint8_t *p, size_t room, const char *msg)
{
    size_t n = 0, len = strlen(msg);

    if (room < 3 + len * 3 + 1)
        return 0;
    p[n++] = 0xba;
    p[n++] = SERIAL_PORT & 0xff;
    p[n++] = SERIAL_PORT >> 8;
    for (size_t i = 0; i < len; i++) {
        p[n++] = 0xb0;
        p[n++] = (uint8_t)msg[i];
        p[n++] = 0xee;
    }
    p[n++] = 0xf4;
    return n;
}

static int open_vm(struct vm *v)
{
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = GUEST_MEM_SIZE,
    };
    int run_size;

    v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (v->kvm < 0)
        return fail("open /dev/kvm");
    if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        fprintf(stderr, "kvm-smoke: unexpected KVM API version\n");
        return -1;
    }
    v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
    if (v->vm < 0)
        return fail("KVM_CREATE_VM");
    v->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (v->mem == MAP_FAILED)
        return fail("mmap guest memory");
    region.userspace_addr = (uintptr_t)v->mem;
    if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");
    v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
    if (v->vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    run_size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    v->run_size = (size_t)run_size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
    if (v->run == MAP_FAILED)
        return fail("mmap kvm_run");
    return 0;
}

static int setup_vcpu(struct vm *v)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = {.rip = CODE_ADDR, .rflags = 0x2};

    if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");
    return 0;
}

static void take_io(const struct kvm_run *run, FILE *out)
{
    const uint8_t *data = (const uint8_t *)run + run->io.data_offset;

    if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == SERIAL_PORT)
        fwrite(data, run->io.size, run->io.count, out);
}

/* Runs until HLT; returns 0 on HLT, -1 on anything else. */
static int run_vcpu(struct vm *v, unsigned *exits)
{
    for (;;) {
        if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                fprintf(stderr, "kvm-smoke: guest did not halt within %d s\n", RUN_TIMEOUT_S);
                return -1;
            }
            return fail("KVM_RUN");
        }
        (*exits)++;
        switch (v->run->exit_reason) {
        case KVM_EXIT_IO:
            take_io(v->run, stdout);
            break;
        case KVM_EXIT_HLT:
            return 0;
        default:
            fprintf(stderr, "kvm-smoke: unexpected exit reason %u\n", v->run->exit_reason);
            return -1;
        }
    }
}

int main(int argc, char **argv)
{
    const char *msg = argc > 1 ? argv[1] : "hello from kvm";
    struct vm v = {.kvm = -1, .vm = -1, .vcpu = -1};
    struct sigaction sa = {.sa_handler = on_alarm};
    unsigned exits = 0;

    if (open_vm(&v) < 0 || setup_vcpu(&v) < 0)
        return 1;
    if (!emit_code(v.mem + CODE_ADDR, GUEST_MEM_SIZE - CODE_ADDR, msg)) {
        fprintf(stderr, "kvm-smoke: message too long\n");
        return 1;
    }
    sigaction(SIGALRM, &sa, NULL);
    alarm(RUN_TIMEOUT_S);
    if (run_vcpu(&v, &exits) < 0)
        return 1;
    alarm(0);
    printf("\n");
    fprintf(stderr, "kvm-smoke: guest halted after %u exits\n", exits);
    return 0;
}
