/* README example: share a session, print its URL, sync two writes, flush, print the stats. */
#include <stdio.h>
#include <string.h>
#include "opencode_share.h"

int main(int argc, char **argv) {
    char config[256], *share = NULL, *stats = NULL;
    snprintf(config, sizeof config, "{\"url\":\"%s\"}", argc > 1 ? argv[1] : "http://127.0.0.1:8787");
    if (share_init(config) != SHARE_OK) {
        fprintf(stderr, "init: %s\n", share_last_error());
        return 1;
    }
    if (share_create("ses_readme000000000000000001", &share) != SHARE_OK) {
        fprintf(stderr, "create: %s\n", share_last_error());
        share_shutdown(0);
        return 1;
    }
    /* share is {"url":"..","secret":".."}: print the url (a real program would use a JSON
       parser, and keep the secret to remove the share later) */
    const char *url = strstr(share, "\"url\":\"");
    if (url != NULL) {
        url += strlen("\"url\":\"");
        printf("share URL: %.*s\n", (int)strcspn(url, "\""), url);
    }
    share_string_free(share);

    share_sync("session/info/ses_readme000000000000000001", "{\"title\":\"hello\"}");
    share_sync("session/part/ses_readme000000000000000001/msg_1/prt_1", "{\"type\":\"text\",\"text\":\"hi\"}");
    if (share_flush(5000) != SHARE_OK)
        fprintf(stderr, "flush: %s\n", share_last_error());

    if (share_stats(&stats) == SHARE_OK) {
        printf("stats: %s\n", stats);
        share_string_free(stats);
    }
    return share_shutdown(5000) == SHARE_OK ? 0 : 1;
}
