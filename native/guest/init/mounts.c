#include "mounts.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Where the pieces are assembled, in the initramfs. After the switch they
 * stay reachable only through the mounts built on them. */
#define LOWER_DIR "/.lower"
#define RW_DIR "/.rw"
#define NEW_ROOT "/.root"

static void make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		die_errno(errno, "mkdir ", path, NULL);
}

/* mount(2), creating the mount point when it is missing. */
static void mount_on(const char *src, const char *target, const char *type,
		     unsigned long flags, const char *data)
{
	if (mount(src, target, type, flags, data) == 0)
		return;
	if (errno == ENOENT) {
		make_dir(target, 0755);
		if (mount(src, target, type, flags, data) == 0)
			return;
	}
	die_errno(errno, "mount ", type ? type : src, " on ", target, NULL);
}

void mount_dev(void)
{
	mount_on("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
}

/* prefix + path into buf (sized for our short constant paths). */
static const char *join(char *buf, size_t cap, const char *prefix, const char *path)
{
	size_t a = strlen(prefix), b = strlen(path);

	if (a + b + 1 > cap)
		die_errno(ENAMETOOLONG, prefix, path, NULL);
	memcpy(buf, prefix, a);
	memcpy(buf + a, path, b + 1);
	return buf;
}

void mount_api(const char *prefix)
{
	char path[64];
	const unsigned long locked = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	mount_on("proc", join(path, sizeof path, prefix, "/proc"), "proc", locked, NULL);
	mount_on("sysfs", join(path, sizeof path, prefix, "/sys"), "sysfs", locked, NULL);
	mount_on("tmpfs", join(path, sizeof path, prefix, "/tmp"), "tmpfs",
		 MS_NOSUID | MS_NODEV, "mode=1777");
}

void mount_devpts(void)
{
	struct stat st;

	if (mkdir("/dev/pts", 0755) != 0 && errno != EEXIST) {
		say_error("mkdir /dev/pts: ", strerror(errno), NULL);
		return;
	}
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "gid=5,mode=620,ptmxmode=666") != 0) {
		say_error("mount devpts on /dev/pts: ", strerror(errno), NULL);
		return;
	}
	/* devtmpfs normally has the ptmx node (it opens the pts instance next
	 * to it); without one, point at the instance's own. */
	if (lstat("/dev/ptmx", &st) != 0 && symlink("pts/ptmx", "/dev/ptmx") != 0)
		say_error("symlink /dev/ptmx: ", strerror(errno), NULL);
}

/* Mounts an ext4 block device, naming the device in errors. */
static void mount_disk(const char *dev, const char *dir, unsigned long flags, const char *role)
{
	if (mount(dev, dir, "ext4", flags, NULL) != 0)
		die_errno(errno, "mount ", role, " ", dev, " (ext4) on ", dir, NULL);
}

void root_switch(const struct config *cfg)
{
	make_dir(LOWER_DIR, 0755);
	mount_disk(cfg->root, LOWER_DIR, MS_RDONLY, "root");

	make_dir(RW_DIR, 0755);
	if (cfg->upper)
		mount_disk(cfg->upper, RW_DIR, MS_NOATIME, "upper");
	else
		mount_on("tmpfs", RW_DIR, "tmpfs", 0, "mode=0755");
	make_dir(RW_DIR "/upper", 0755);
	make_dir(RW_DIR "/work", 0755);

	make_dir(NEW_ROOT, 0755);
	mount_on("overlay", NEW_ROOT, "overlay", 0,
		 "lowerdir=" LOWER_DIR ",upperdir=" RW_DIR "/upper,workdir=" RW_DIR "/work");

	mount_on("/dev", NEW_ROOT "/dev", NULL, MS_MOVE, NULL);
	mount_api(NEW_ROOT);

	/* The initramfs cannot be pivot_root'ed: move the new root over / and
	 * chroot into it. */
	if (chdir(NEW_ROOT) != 0)
		die_errno(errno, "chdir ", NEW_ROOT, NULL);
	if (mount(".", "/", NULL, MS_MOVE, NULL) != 0)
		die_errno(errno, "move ", NEW_ROOT, " to /", NULL);
	if (chroot(".") != 0)
		die_errno(errno, "chroot ", NEW_ROOT, NULL);
	if (chdir("/") != 0)
		die_errno(errno, "chdir /", NULL);
}
