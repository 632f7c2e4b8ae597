/*
 * Test harness for libadudiffapi.so, compiled by the integration tests with `cc`.
 *
 * It loads the library as ADU's agent does (microsoft_delta_download_handler_utils.cpp):
 * dlopen by name or path with RTLD_LAZY, dlsym of the six functions the agent resolves (plus
 * adu_diff_apply_set_log_path from the 3.0 header, optional), create a session, apply, read
 * the errors with size_t indexes, and -- as the agent does, because its SharedLib goes out of
 * scope first -- dlclose the library *before* closing the session.
 *
 *   harness LIB apply SOURCE DIFF TARGET [LOG]   one apply; prints "result N", "count N",
 *                                                "error CODE TEXT" lines
 *   harness LIB threads S1 D1 T1 S2 D2 T2         two sessions in two threads at once;
 *                                                prints "thread I result N" (+ errors)
 *   harness LIB abuse SOURCE DIFF TARGET          null/foreign/closed handles, null and
 *                                                non-UTF-8 paths, indexes out of range;
 *                                                prints "ok ..." or "FAIL ..." lines
 *
 * Exit status: 0 when the harness ran (whatever the applies returned), 1 when an abuse check
 * failed, 2 on usage or loading errors.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *adu_apply_handle;
typedef adu_apply_handle (*create_fn)(void);
typedef void (*close_fn)(adu_apply_handle);
typedef int (*set_log_fn)(adu_apply_handle, const char *);
typedef int (*apply_fn)(adu_apply_handle, const char *, const char *, const char *);
typedef size_t (*count_fn)(adu_apply_handle);
typedef const char *(*text_fn)(adu_apply_handle, size_t);
typedef int (*code_fn)(adu_apply_handle, size_t);

struct api {
    void *lib;
    create_fn create;
    close_fn close;
    set_log_fn set_log;
    apply_fn apply;
    count_fn count;
    text_fn text;
    code_fn code;
};

static void *must_sym(void *lib, const char *name) {
    dlerror();
    void *sym = dlsym(lib, name);
    const char *err = dlerror();
    if (err != NULL || sym == NULL) {
        fprintf(stderr, "dlsym %s: %s\n", name, err ? err : "null");
        exit(2);
    }
    return sym;
}

static struct api load(const char *path) {
    struct api a;
    a.lib = dlopen(path, RTLD_LAZY);
    if (a.lib == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        exit(2);
    }
    a.apply = (apply_fn)must_sym(a.lib, "adu_diff_apply");
    a.close = (close_fn)must_sym(a.lib, "adu_diff_apply_close_session");
    a.create = (create_fn)must_sym(a.lib, "adu_diff_apply_create_session");
    a.code = (code_fn)must_sym(a.lib, "adu_diff_apply_get_error_code");
    a.count = (count_fn)must_sym(a.lib, "adu_diff_apply_get_error_count");
    a.text = (text_fn)must_sym(a.lib, "adu_diff_apply_get_error_text");
    a.set_log = (set_log_fn)dlsym(a.lib, "adu_diff_apply_set_log_path");
    return a;
}

/* One apply as the agent does it; the library is closed before the session. */
static int agent_apply(const char *lib, const char *source, const char *diff, const char *target,
                       const char *log) {
    struct api a = load(lib);
    adu_apply_handle session = a.create();
    if (session == NULL) {
        printf("create failed\n");
        return 2;
    }
    if (log != NULL) {
        if (a.set_log == NULL) {
            fprintf(stderr, "no adu_diff_apply_set_log_path\n");
            return 2;
        }
        printf("set_log_path %d\n", a.set_log(session, log));
    }
    int res = a.apply(session, source, diff, target);
    printf("result %d\n", res);
    if (res != 0) {
        size_t count = a.count(session);
        printf("count %zu\n", count);
        for (size_t i = 0; i < count; ++i) {
            int code = a.code(session, i);
            const char *text = a.text(session, i); /* do not free */
            printf("error %d %s\n", code, text);
        }
    }
    dlclose(a.lib);
    a.close(session);
    return 0;
}

struct job {
    struct api *api;
    pthread_barrier_t *start;
    const char *source, *diff, *target;
    int result;
    char first_error[512];
};

static void *thread_apply(void *arg) {
    struct job *j = arg;
    adu_apply_handle session = j->api->create();
    pthread_barrier_wait(j->start);
    j->result = session ? j->api->apply(session, j->source, j->diff, j->target) : -1;
    j->first_error[0] = '\0';
    if (j->result > 0) {
        snprintf(j->first_error, sizeof j->first_error, "%d %s", j->api->code(session, 0),
                 j->api->text(session, 0));
    }
    j->api->close(session);
    return NULL;
}

static int two_threads(const char *lib, char **args) {
    struct api a = load(lib);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct job jobs[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; ++i) {
        jobs[i] = (struct job){&a, &start, args[3 * i], args[3 * i + 1], args[3 * i + 2], 0, ""};
        if (pthread_create(&threads[i], NULL, thread_apply, &jobs[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    for (int i = 0; i < 2; ++i) {
        pthread_join(threads[i], NULL);
        printf("thread %d result %d\n", i, jobs[i].result);
        if (jobs[i].result != 0) {
            printf("thread %d error %s\n", i, jobs[i].first_error);
        }
    }
    pthread_barrier_destroy(&start);
    dlclose(a.lib);
    return 0;
}

static int failures = 0;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) {
        ++failures;
    }
}

static int is_empty_string(const char *s) { return s != NULL && s[0] == '\0'; }

static int abuse(const char *lib, const char *source, const char *diff, const char *target) {
    struct api a = load(lib);
    /* Null and foreign handles. */
    check(a.apply(NULL, source, diff, target) != 0, "apply with a null handle fails");
    check(a.count(NULL) == 0, "null handle: no errors");
    check(is_empty_string(a.text(NULL, 0)), "null handle: error text is an empty string");
    check(a.code(NULL, 0) == 0, "null handle: error code 0");
    long on_stack[4] = {0, 0, 0, 0};
    void *on_heap = malloc(64);
    memset(on_heap, 0xA5, 64);
    check(a.apply(on_stack, source, diff, target) != 0, "apply with a stack pointer fails");
    check(a.apply(on_heap, source, diff, target) != 0, "apply with a heap pointer fails");
    check(a.count(on_heap) == 0 && is_empty_string(a.text(on_heap, 0)), "foreign handle: no errors");
    a.close(on_heap); /* must not free or touch it */
    check(((unsigned char *)on_heap)[0] == 0xA5, "closing a foreign handle leaves it alone");
    free(on_heap);
    a.close(NULL);

    /* Null and non-UTF-8 paths. */
    adu_apply_handle s = a.create();
    check(s != NULL, "create");
    int res = a.apply(s, NULL, diff, target);
    check(res >= 1 && a.count(s) == (size_t)res, "null source: errors listed");
    check(strstr(a.text(s, 0), "null") != NULL, "null source: text says null");
    res = a.apply(s, source, NULL, NULL);
    check(res == 2 && a.count(s) == 2, "null diff and target: two errors");
    res = a.apply(s, "/nonexistent/\xff\xfe-source", diff, target);
    check(res == 1 && a.text(s, 0)[0] != '\0', "non-UTF-8 source path: an error with text");
    printf("info non-UTF-8: %d %s\n", a.code(s, 0), a.text(s, 0));

    /* Indexes out of range. */
    check(is_empty_string(a.text(s, 1)), "index = count: empty text");
    check(is_empty_string(a.text(s, (size_t)-1)), "index SIZE_MAX: empty text");
    check(a.code(s, 12345) == 0, "index out of range: code 0");
    check(a.set_log == NULL || a.set_log(s, "/nonexistent-folder/x.log") == 1,
          "log path in a missing folder is refused");

    /* A closed handle. */
    a.close(s);
    check(a.apply(s, source, diff, target) != 0, "apply with a closed handle fails");
    check(a.count(s) == 0 && is_empty_string(a.text(s, 0)), "closed handle: no errors");
    a.close(s);
    check(1, "closing twice");
    dlclose(a.lib);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[2], "apply") == 0) {
        return agent_apply(argv[1], argv[3], argv[4], argv[5], argc > 6 ? argv[6] : NULL);
    }
    if (argc == 9 && strcmp(argv[2], "threads") == 0) {
        return two_threads(argv[1], argv + 3);
    }
    if (argc == 6 && strcmp(argv[2], "abuse") == 0) {
        return abuse(argv[1], argv[3], argv[4], argv[5]);
    }
    fprintf(stderr, "usage: harness LIB apply|threads|abuse ...\n");
    return 2;
}
