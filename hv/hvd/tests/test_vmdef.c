/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VM definition validator: each bad field gives its field and reason. */
#include "check.h"
#include "vmdef.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/hv-vmdef-XXXXXX";
static char images[256], kernel[256];

static char *try(const char *body)
{
    char text[2048];
    snprintf(text, sizeof(text), "[vm]\nname=t1\nkernel=%s\n%s", kernel, body);
    struct vmdef_ctx ctx = {.images_dir = images, .check_files = true};
    char *err = NULL;
    struct vmdef *def = vmdef_from_text(text, strlen(text), &ctx, &err);
    vmdef_free(def);
    return err; /* NULL: valid */
}

static void expect(const char *body, const char *message)
{
    char *err = try(body);
    if (!err || !strstr(err, message)) {
        fprintf(stderr, "for %s\n  expected: %s\n  got: %s\n", body, message,
                err ? err : "(valid)");
        check_failures++;
    }
    free(err);
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    fputs("x", f);
    fclose(f);
}

/* The stored form of the definition's first disk, or the error. */
static char *first_disk(const struct vmdef_ctx *ctx, const char *entry)
{
    char text[1024], *err = NULL;
    snprintf(text, sizeof(text), "[vm]\nname=d\nkernel=%s\ndisk=%s\n", kernel, entry);
    struct vmdef *def = vmdef_from_text(text, strlen(text), ctx, &err);
    char *out = def ? strdup(def->disks[0]) : err;
    vmdef_free(def);
    return out;
}

static void expect_disk(const struct vmdef_ctx *ctx, const char *entry, const char *stored)
{
    char *got = first_disk(ctx, entry);
    if (strcmp(got, stored) != 0) {
        fprintf(stderr, "disk=%s\n  expected: %s\n  got: %s\n", entry, stored, got);
        check_failures++;
    }
    free(got);
}

/* The parser: options in any order, stored in one form; old entries unchanged. */
static void disk_entries(const struct vmdef_ctx *ctx)
{
    expect_disk(ctx, "root.img", "root.img");
    expect_disk(ctx, "root.img,ro", "root.img,ro");
    expect_disk(ctx, "root.img,rw", "root.img");
    expect_disk(ctx, "root.img,format=raw", "root.img,format=raw");
    expect_disk(ctx, "root.img,format=raw,ro", "root.img,ro,format=raw");
    expect_disk(ctx, "root.img,ro,format=raw", "root.img,ro,format=raw");
    expect_disk(ctx, "root.img,format=raw,rw", "root.img,format=raw");

    struct vmdef_disk disk;
    char *err = NULL;
    CHECK(vmdef_disk_parse("work.img,format=qcow2,ro", "/srv/images", &disk, &err) == 0);
    CHECK(strcmp(disk.path, "/srv/images/work.img") == 0 && disk.readonly &&
          strcmp(disk.format, "qcow2") == 0);
    char *text = vmdef_disk_text(&disk);
    CHECK(strcmp(text, "/srv/images/work.img,ro,format=qcow2") == 0);
    free(text);
    vmdef_disk_clear(&disk);
    CHECK(vmdef_disk_parse("/dev/sdb", "/srv/images", &disk, &err) == 0);
    CHECK(strcmp(disk.path, "/dev/sdb") == 0 && !disk.readonly && disk.format == NULL);
    vmdef_disk_clear(&disk);
    CHECK(vmdef_disk_parse("work.img,ro", NULL, &disk, &err) == 0);
    CHECK(strcmp(disk.path, "work.img") == 0 && disk.readonly);
    vmdef_disk_clear(&disk);
    CHECK(vmdef_disk_parse("work.img,format=qcow2,format=qcow2", NULL, &disk, &err) < 0);
    CHECK(err && strcmp(err, "field 'disk': format= given twice in "
                             "'work.img,format=qcow2,format=qcow2'") == 0);
    free(err);
    err = NULL;
    CHECK(vmdef_disk_parse("work.img,cache=none", NULL, &disk, &err) < 0);
    CHECK(err && strstr(err, "unknown option 'cache=none' in 'work.img,cache=none' (the options "
                             "are ro, rw, nonpersistent and format=raw|qcow2|vhd)"));
    free(err);

    /* The stored form survives text and JSON. */
    char def_text[512];
    snprintf(def_text, sizeof(def_text),
             "[vm]\nname=f\nkernel=%s\ndisk=root.img,format=raw,ro\n"
             "pci_slots=disk:/srv/images/root.img=3;virtio-net=1\n",
             kernel);
    struct vmdef *a = vmdef_from_text(def_text, strlen(def_text), ctx, &err);
    char *again = vmdef_to_text(a);
    CHECK(strstr(again, "disk=root.img,ro,format=raw;") != NULL);
    CHECK(strstr(again, "pci_slots=disk:/srv/images/root.img=3;virtio-net=1;") != NULL);
    struct json_object *j = vmdef_to_json(a);
    struct vmdef *b = vmdef_from_json(j, ctx, &err);
    CHECK(b && strcmp(b->disks[0], "root.img,ro,format=raw") == 0);
    CHECK(b && b->pci_slots && strcmp(b->pci_slots[0], "disk:/srv/images/root.img=3") == 0 &&
          strcmp(b->pci_slots[1], "virtio-net=1") == 0 && !b->pci_slots[2]);
    json_object_put(j);
    vmdef_free(a);
    vmdef_free(b);
    free(again);
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "w");
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/*
 * The probe of the first bytes; format=qcow2 (vhd) refused on a file without the magic (footer),
 * format=raw kept on one.
 */
static void formats_from_bytes(void)
{
    char q[300], r[300], e[300], v[300], f[300];
    snprintf(q, sizeof(q), "%s/q.img", images);
    snprintf(r, sizeof(r), "%s/r.img", images);
    snprintf(e, sizeof(e), "%s/empty.img", images);
    snprintf(v, sizeof(v), "%s/v.vhd", images);
    snprintf(f, sizeof(f), "%s/f.vhd", images);
    write_bytes(q, "QFI\xfb\0\0\0\3", 8);
    write_bytes(r, "QFI\xfa\0\0\0\3", 8);
    write_bytes(e, "", 0);
    /* A dynamic VHD starts and ends with its footer; a fixed one only ends with it. */
    static char vhd[1024], fixed[1024];
    memcpy(vhd, "conectix", 8);
    memcpy(vhd + 512, "conectix", 8);
    vhd[512 + 55] = 0x40; /* current size 0x40 bytes, big-endian at 48 */
    memcpy(fixed + 512, "conectix", 8);
    write_bytes(v, vhd, sizeof(vhd));
    write_bytes(f, fixed, sizeof(fixed));
    const char *fmt = NULL;
    char *err = NULL;
    uint64_t size = 0;
    CHECK(vmdef_probe_format(q, &fmt, &err) == 0 && strcmp(fmt, "qcow2") == 0);
    CHECK(vmdef_probe_format(r, &fmt, &err) == 0 && strcmp(fmt, "raw") == 0);
    CHECK(vmdef_probe_format(e, &fmt, &err) == 0 && strcmp(fmt, "raw") == 0);
    CHECK(vmdef_probe_format(v, &fmt, &err) == 0 && strcmp(fmt, "vhd") == 0);
    CHECK(vmdef_probe_format(f, &fmt, &err) == 0 && strcmp(fmt, "raw") == 0);
    CHECK(vmdef_vhd_size(v, &size) == 0 && size == 0x40 && vmdef_vhd_size(q, &size) < 0);
    CHECK(try("disk=f.vhd,format=vhd\n") == NULL);
    expect("disk=r.img,format=vhd\n", "r.img' is not a VHD image");
    unlink(v);
    unlink(f);
    CHECK(vmdef_probe_format("/nonexistent/x", &fmt, &err) < 0 && err &&
          strstr(err, "cannot be read"));
    free(err);
    CHECK(try("disk=q.img,format=qcow2\n") == NULL);
    CHECK(try("disk=q.img,format=raw\n") == NULL); /* the user's word */
    expect("disk=r.img,format=qcow2\n", "r.img' is not a qcow2 image");
    unlink(q);
    unlink(r);
    unlink(e);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    snprintf(images, sizeof(images), "%s/images", dir);
    snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
    CHECK(mkdir(images, 0700) == 0);
    touch(kernel);
    char img[300];
    snprintf(img, sizeof(img), "%s/root.img", images);
    touch(img);

    CHECK(try("memory=1G\ncpus=2\ndisk=root.img;root.img,ro\nnet=nat\nautostart=true\n") == NULL);
    expect("foo=bar\n", "unknown field 'foo' in [vm]");
    expect("memory=-1G\n", "field 'memory': expected a positive size");
    expect("memory=0\n", "field 'memory': must be between 16M and 1T");
    expect("memory=4T\n", "field 'memory': must be between 16M and 1T");
    expect("memory=12Q\n", "field 'memory': unknown size suffix");
    expect("pci=00:02\n", "field 'pci': '00:02' is not a PCI address");
    expect("pci=00:02.0;0000:00:02.0\n", "field 'pci': 0000:00:02.0 is listed twice");
    expect("pci=1;2;3;4;5;6;7;8;9\n", "field 'pci': at most 8 devices");
    expect("cpus=0\n", "field 'cpus': must be a whole number from 1 to 64");
    expect("cpus=many\n", "field 'cpus'");
    expect("disk=missing.img\n", "field 'disk': image '");
    expect("disk=missing.img\n", "missing.img' does not exist");
    expect("disk=/nonexistent/x.img\n", "field 'disk': image '/nonexistent/x.img' does not exist");
    expect("disk=../etc/passwd\n", "must be an absolute path or an image name");
    expect("disk=root.img,rx\n", "field 'disk': unknown option 'rx'");
    expect("disk=root.img,ro,ro\n", "field 'disk': ro/rw given twice in 'root.img,ro,ro'");
    expect("disk=root.img,ro,rw\n", "field 'disk': ro/rw given twice");
    expect("disk=root.img,format=raw,format=qcow2\n", "field 'disk': format= given twice");
    expect("disk=root.img,format=vmdk\n",
           "field 'disk': format must be raw, qcow2 or vhd (got 'vmdk' in 'root.img,format=vmdk')");
    expect("disk=root.img,\n", "field 'disk': unknown option ''");
    expect("disk=,ro\n", "field 'disk': ',ro' names no file");
    expect("disk=format=raw,root.img\n", "field 'disk': unknown option 'root.img'");
    expect("disk=root.img,format=qcow2\n", "is not a qcow2 image");
    expect("net=bridge\n", "field 'net': must be one of none, nat (got 'bridge')");
    expect("mac=01:00:00:00:00:01\n", "field 'mac'");
    expect("colour=red\n", "field 'colour': expected #rrggbb");
    expect("os=beos\n", "field 'os'");
    expect("role=god\n", "field 'role'");
    expect("autostart=maybe\n", "field 'autostart'");
    expect("vsock=2\n", "field 'vsock'");
    expect("display=sometimes\n", "field 'display': expected true or false");
    expect("slot=0\n", "field 'slot': the hotkey Ctrl+Alt+N is a number from 1 to 9");
    expect("slot=10\n", "field 'slot'");
    expect("role=uivm\nslot=2\n", "field 'slot': the UIVM always has Ctrl+Alt+0");
    CHECK(try("display=false\nslot=3\n") == NULL);
    expect("initrd=/nonexistent\n", "field 'initrd': file '/nonexistent' does not exist");
    expect("[extra]\n", "unknown section [extra]");

    /* name and kernel */
    struct vmdef_ctx ctx = {.images_dir = images, .check_files = true};
    char *err = NULL;
    const char *bad_name = "[vm]\nname=bad name!\nkernel=/x\n";
    CHECK(!vmdef_from_text(bad_name, strlen(bad_name), &ctx, &err));
    CHECK(err && strstr(err, "field 'name': 'bad name!' is not a valid name"));
    free(err);
    const char *no_kernel = "[vm]\nname=ok\n";
    CHECK(!vmdef_from_text(no_kernel, strlen(no_kernel), &ctx, &err));
    CHECK(err && strstr(err, "field 'kernel': missing"));
    free(err);
    const char *garbage = "this is not ini\n";
    CHECK(!vmdef_from_text(garbage, strlen(garbage), &ctx, &err));
    CHECK(err && strstr(err, "not a valid INI file"));
    free(err);

    /* text → definition → text → definition, and JSON → definition */
    char text[512];
    snprintf(text, sizeof(text),
             "[vm]\nname=round\nmemory=768M\ncpus=3\nkernel=%s\ndisk=root.img,ro\nnet=nat\n"
             "colour=#112233\nautostart=true\nrole=uivm\nvsock=42\ndisplay=no\n",
             kernel);
    struct vmdef *a = vmdef_from_text(text, strlen(text), &ctx, &err);
    CHECK(a && a->memory == 768ULL << 20 && a->cpus == 3 && a->autostart && a->vsock == 42);
    char *again = vmdef_to_text(a);
    struct vmdef *b = vmdef_from_text(again, strlen(again), &ctx, &err);
    CHECK(b && b->memory == a->memory && strcmp(b->disks[0], "root.img,ro") == 0 &&
          strcmp(b->role, "uivm") == 0);
    struct json_object *j = vmdef_to_json(b);
    struct vmdef *c = vmdef_from_json(j, &ctx, &err);
    CHECK(c && c->memory == a->memory && c->cpus == 3 && c->autostart && !c->display &&
          !a->display && !b->display);
    json_object_put(j);
    j = json_tokener_parse("{\"name\":\"j\",\"kernel\":\"/nonexistent\",\"memory\":-5}");
    CHECK(!vmdef_from_json(j, &ctx, &err) && err && strstr(err, "field 'memory'"));
    free(err);
    json_object_put(j);
    char mac1[18], mac2[18];
    vmdef_mac(a, mac1);
    vmdef_mac(b, mac2);
    CHECK(strcmp(mac1, mac2) == 0 && strncmp(mac1, "52:54:", 6) == 0);
    vmdef_free(a);
    vmdef_free(b);
    vmdef_free(c);
    free(again);

    /* pci= is kept in the long form through text and JSON */
    snprintf(text, sizeof(text), "[vm]\nname=p\nkernel=%s\npci=00:02.0; 0000:01:00.1\n", kernel);
    a = vmdef_from_text(text, strlen(text), &ctx, &err);
    CHECK(a && a->pci && strcmp(a->pci[0], "0000:00:02.0") == 0 &&
          strcmp(a->pci[1], "0000:01:00.1") == 0 && !a->pci[2]);
    again = vmdef_to_text(a);
    CHECK(strstr(again, "pci=0000:00:02.0;0000:01:00.1;") != NULL);
    j = vmdef_to_json(a);
    c = vmdef_from_json(j, &ctx, &err);
    CHECK(c && c->pci && strcmp(c->pci[1], "0000:01:00.1") == 0);
    json_object_put(j);
    vmdef_free(a);
    vmdef_free(c);
    free(again);

    /* display defaults to on; a slot survives text and JSON */
    snprintf(text, sizeof(text), "[vm]\nname=s\nkernel=%s\nslot=7\n", kernel);
    a = vmdef_from_text(text, strlen(text), &ctx, &err);
    CHECK(a && a->display && a->slot == 7);
    again = vmdef_to_text(a);
    b = vmdef_from_text(again, strlen(again), &ctx, &err);
    CHECK(b && b->display && b->slot == 7);
    j = vmdef_to_json(b);
    c = vmdef_from_json(j, &ctx, &err);
    CHECK(c && c->display && c->slot == 7);
    json_object_put(j);
    vmdef_free(a);
    vmdef_free(b);
    vmdef_free(c);
    free(again);

    disk_entries(&ctx);
    formats_from_bytes();

    unlink(img);
    unlink(kernel);
    rmdir(images);
    rmdir(dir);
    CHECK_DONE();
}
