/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * COM1: a 16550A UART at 0x3F8, IRQ 4, enough for Linux's 8250 driver and
 * its console. Output goes to stdout or a file as the guest writes it;
 * input comes from stdin (a tty in raw-ish mode, or a pipe) on a thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "logfile.h"
#include "state.h"
#include "util.h"
#include "vm.h"
#include "x86/aml.h"

#define COM1_BASE 0x3f8
#define COM1_IRQ  4

#define IER_RDI    0x01 /* received data available */
#define IER_THRI   0x02 /* transmitter holding register empty */
#define IER_RLSI   0x04 /* receiver line status */
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_FIFO   0xc0
#define LCR_DLAB   0x80
#define MCR_LOOP   0x10
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define FCR_FIFO   0x01
#define FCR_CLR_RX 0x02

#define RX_SIZE 256

struct serial_dev {
    struct vm *vm;
    pthread_mutex_t lock;
    pthread_cond_t rx_space;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool thr_pending; /* THR-empty interrupt not yet acknowledged */
    bool irq_level;
    uint8_t rx[RX_SIZE];
    unsigned rx_head, rx_len;

    int out_fd;
    struct logfile out; /* out_fd, capped when it is a file */
    bool close_out;
    int in_fd; /* -1: no input */
    int stop_pipe[2];
    pthread_t reader;
    bool reader_started;
    bool tty_saved;
    struct termios saved_tio;
};

static uint8_t iir(const struct serial_dev *s)
{
    uint8_t fifo = (s->fcr & FCR_FIFO) ? IIR_FIFO : 0;

    if ((s->ier & IER_RDI) && s->rx_len)
        return fifo | IIR_RDI;
    if ((s->ier & IER_THRI) && s->thr_pending)
        return fifo | IIR_THRI;
    return fifo | IIR_NONE;
}

/* Caller holds the lock. ISA IRQs are edge-triggered: KVM sees our level changes. */
static void update_irq(struct serial_dev *s)
{
    bool level = !(iir(s) & IIR_NONE);
    if (level != s->irq_level) {
        s->irq_level = level;
        irq_line(&s->vm->irq, COM1_IRQ, level);
    }
}

static void emit(struct serial_dev *s, uint8_t c)
{
    if (s->mcr & MCR_LOOP) {
        if (s->rx_len < RX_SIZE)
            s->rx[(s->rx_head + s->rx_len++) % RX_SIZE] = c;
        return;
    }
    if (s->out_fd >= 0 && logfile_write(&s->out, &c, 1) < 0) {
        /* The reader of our console went away: drop output, keep the guest running. */
        s->out_fd = -1;
    }
}

static uint8_t msr(const struct serial_dev *s)
{
    if (s->mcr & MCR_LOOP) {
        /* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux probes this). */
        uint8_t m = s->mcr;
        return (uint8_t)(((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) |
                         ((m & 0x08) << 4));
    }
    return 0xb0; /* DCD, DSR, CTS */
}

static uint8_t serial_read(struct serial_dev *s, uint64_t off)
{
    uint8_t v = 0;

    switch (off) {
    case 0:
        if (s->lcr & LCR_DLAB)
            return s->dll;
        if (s->rx_len) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % RX_SIZE;
            s->rx_len--;
            pthread_cond_signal(&s->rx_space);
        }
        return v;
    case 1:
        return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
    case 2:
        v = iir(s);
        if ((v & 0x0f) == IIR_THRI)
            s->thr_pending = false; /* reading IIR acknowledges THR empty */
        return v;
    case 3:
        return s->lcr;
    case 4:
        return s->mcr;
    case 5:
        return (uint8_t)(LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0));
    case 6:
        return msr(s);
    default:
        return s->scr;
    }
}

static void serial_write(struct serial_dev *s, uint64_t off, uint8_t v)
{
    switch (off) {
    case 0:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
        } else {
            emit(s, v);
            s->thr_pending = true; /* sent at once: the THR is empty again */
        }
        break;
    case 1:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            /* Enabling THRI while the THR is empty raises it right away. */
            if ((v & IER_THRI) && !(s->ier & IER_THRI))
                s->thr_pending = true;
            s->ier = v & 0x0f;
        }
        break;
    case 2:
        s->fcr = v & (FCR_FIFO | 0xc0);
        if (v & FCR_CLR_RX) {
            s->rx_len = 0;
            pthread_cond_signal(&s->rx_space);
        }
        break;
    case 3:
        s->lcr = v;
        break;
    case 4:
        s->mcr = v & 0x1f;
        break;
    case 7:
        s->scr = v;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
}

static void serial_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct serial_dev *s = opaque;

    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < len && off + i < 8; i++) {
        if (is_write)
            serial_write(s, off + i, data[i]);
        else
            data[i] = serial_read(s, off + i);
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

/* Input thread: stdin to the receive buffer, as fast as the guest drains it. */
static void *reader_thread(void *arg)
{
    struct serial_dev *s = arg;
    uint8_t buf[64];

    for (;;) {
        struct pollfd p[2] = {{s->in_fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        pthread_mutex_lock(&s->lock);
        while (s->rx_len == RX_SIZE)
            pthread_cond_wait(&s->rx_space, &s->lock);
        size_t room = MIN(sizeof(buf), (size_t)(RX_SIZE - s->rx_len));
        pthread_mutex_unlock(&s->lock);

        ssize_t n = read(s->in_fd, buf, room);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break; /* end of input: the guest simply gets no more */
        pthread_mutex_lock(&s->lock);
        /* Room is counted again under the lock: never more than RX_SIZE bytes queued. */
        for (ssize_t i = 0; i < n && s->rx_len < RX_SIZE; i++)
            s->rx[(s->rx_head + s->rx_len++) % RX_SIZE] = buf[i];
        update_irq(s);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

/* A terminal on stdin: characters at once, no echo, but ^C still stops the VM. */
static void setup_tty(struct serial_dev *s)
{
    struct termios t;

    if (tcgetattr(s->in_fd, &s->saved_tio) < 0)
        return;
    s->tty_saved = true;
    t = s->saved_tio;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | IEXTEN);
    t.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(s->in_fd, TCSANOW, &t);
}

static int open_console(struct serial_dev *s, const char *spec)
{
    s->in_fd = -1;
    if (!spec || strcmp(spec, "stdio") == 0) {
        s->out_fd = STDOUT_FILENO;
        if (isatty(STDIN_FILENO)) {
            s->in_fd = STDIN_FILENO;
            setup_tty(s);
        } else {
            struct stat st;
            if (fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
                s->in_fd = STDIN_FILENO;
        }
        return 0;
    }
    if (strncmp(spec, "file:", 5) == 0 && spec[5]) {
        /* A restored VM goes on with the log the saved one wrote: appended, not truncated. */
        int mode = s->vm->cfg->restore ? O_APPEND : O_TRUNC;
        s->out_fd = open(spec + 5, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0640);
        if (s->out_fd < 0) {
            log_err("cannot open the console file %s: %s", spec + 5, strerror(errno));
            return -errno;
        }
        s->close_out = true;
        return 0;
    }
    if (strcmp(spec, "none") == 0) {
        s->out_fd = -1;
        return 0;
    }
    log_err("--console takes stdio, file:PATH or none, not \"%s\"", spec);
    return -EINVAL;
}

int serial8250_init(struct vm *vm)
{
    struct serial_dev *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->vm = vm;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->rx_space, NULL);
    vm->serial = s;
    int ret = open_console(s, vm->cfg->console);
    logfile_init(&s->out, s->out_fd, 0);
    if (ret < 0)
        return ret;
    ret = io_bus_register(&vm->pio, COM1_BASE, 8, serial_io, s);
    if (ret < 0)
        return ret;
    if (s->in_fd >= 0) {
        if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
            return -errno;
        if (pthread_create(&s->reader, NULL, reader_thread, s) == 0)
            s->reader_started = true;
    }
    return 0;
}

/* Power-on registers (a reboot): the next kernel finds no loopback, no enabled interrupts. */
void serial8250_reset(struct vm *vm)
{
    struct serial_dev *s = vm->serial;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->ier = s->lcr = s->mcr = s->scr = s->fcr = 0;
    s->thr_pending = false;
    s->rx_head = s->rx_len = 0;
    pthread_cond_signal(&s->rx_space);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

/*
 * Output needs nothing here: each byte the guest writes reaches out_fd at
 * once (logfile_write, no buffer), so none is pending at a save.
 */
int serial8250_save(struct vm *vm, struct state_out *out)
{
    struct serial_dev *s = vm->serial;

    pthread_mutex_lock(&s->lock);
    state_put_u8(out, s->ier);
    state_put_u8(out, s->lcr);
    state_put_u8(out, s->mcr);
    state_put_u8(out, s->scr);
    state_put_u8(out, s->fcr);
    state_put_u8(out, s->dll);
    state_put_u8(out, s->dlm);
    state_put_bool(out, s->thr_pending);
    state_put_u16(out, (uint16_t)s->rx_len);
    for (unsigned i = 0; i < s->rx_len; i++)
        state_put_u8(out, s->rx[(s->rx_head + i) % RX_SIZE]);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int serial8250_load(struct vm *vm, struct state_in *in)
{
    struct serial_dev *s = vm->serial;
    uint8_t r[7], rx[RX_SIZE];

    state_get_bytes(in, r, sizeof(r));
    bool thr_pending = state_get_bool(in);
    unsigned n = state_get_u16(in);
    if (state_in_ok(in) && n > RX_SIZE)
        return state_in_fail(in, "the receive buffer holds %u bytes, more than its %u", n, RX_SIZE);
    state_get_bytes(in, rx, n);
    if (state_in_ok(in) && (r[0] & ~0x0f))
        return state_in_fail(in, "the interrupt enable register holds %#x", r[0]);
    if (state_in_ok(in) && (r[2] & ~0x1f))
        return state_in_fail(in, "the modem control register holds %#x", r[2]);
    if (state_in_ok(in) && (r[4] & ~(FCR_FIFO | 0xc0)))
        return state_in_fail(in, "the FIFO control register holds %#x", r[4]);
    if (!state_in_ok(in))
        return -1;

    pthread_mutex_lock(&s->lock);
    s->ier = r[0], s->lcr = r[1], s->mcr = r[2], s->scr = r[3], s->fcr = r[4];
    s->dll = r[5], s->dlm = r[6];
    s->thr_pending = thr_pending;
    /* What the input thread read before the load comes after the saved bytes, as room allows. */
    unsigned keep = MIN(s->rx_len, RX_SIZE - n);
    for (unsigned i = 0; i < keep; i++)
        rx[n + i] = s->rx[(s->rx_head + i) % RX_SIZE];
    memcpy(s->rx, rx, n + keep);
    s->rx_head = 0;
    s->rx_len = n + keep;
    /*
     * The line's level follows from the registers (iir). The in-kernel
     * PIC/IOAPIC came back with the pin as it was, but KVM's per-source line
     * state is new: raise the line again if it was up.
     */
    s->irq_level = false;
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void serial8250_destroy(struct vm *vm)
{
    struct serial_dev *s = vm->serial;

    if (!s)
        return;
    if (s->reader_started) {
        write_full(s->stop_pipe[1], "x", 1);
        pthread_mutex_lock(&s->lock);
        s->rx_len = 0; /* unblock a reader waiting for room */
        pthread_cond_signal(&s->rx_space);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->reader, NULL);
    }
    if (s->tty_saved)
        tcsetattr(s->in_fd, TCSANOW, &s->saved_tio);
    if (s->close_out)
        close(s->out_fd);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    io_bus_unregister(&vm->pio, COM1_BASE);
    pthread_cond_destroy(&s->rx_space);
    pthread_mutex_destroy(&s->lock);
    free(s);
    vm->serial = NULL;
}

/* \_SB.COM1 (PNP0501): the guest's serial driver binds it through ACPI. */
void serial8250_aml(struct vm *vm, struct aml *a)
{
    (void)vm;
    static const struct aml_io io = {COM1_BASE, 8};
    static const uint8_t irq = COM1_IRQ;
    aml_isa_device(a, "COM1", "PNP0501", 1, &io, 1, &irq, 1);
}
