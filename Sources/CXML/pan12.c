#include "cxml.h"
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first problem libxml2 reports, with its line: any error or warning makes the text suspect. */
struct problem { char text[512]; int set; int line; };

static void on_error(void *context, xmlErrorPtr error) {
    struct problem *p = context;
    if (!p || !error || p->set) return;
    const char *message = error->message ? error->message : "error";
    size_t length = strlen(message);
    while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == ' ')) length--;
    snprintf(p->text, sizeof p->text, "line %d: malformed XML: %.*s", error->line, (int)length, message);
    p->line = error->line;
    p->set = 1;
}

/* The reading in progress on this thread, for the entity loader (which gets no context of ours). */
static __thread struct problem *current;

/* No external entity or DTD is ever loaded: a file that needs one is not read. */
static xmlParserInputPtr refuse_external(const char *url, const char *id, xmlParserCtxtPtr context) {
    (void)id;
    if (current && !current->set) {
        snprintf(current->text, sizeof current->text, "line %d: external entity or DTD refused: %s",
                 context && context->input ? context->input->line : 0, url ? url : "(unnamed)");
        current->set = 1;
    }
    return NULL;
}

struct list { char **items; size_t count, capacity; };

static int push(struct list *l, char *item) {
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? l->capacity * 2 : 16;
        char **items = realloc(l->items, capacity * sizeof *items);
        if (!items) { free(item); return -1; }
        l->items = items; l->capacity = capacity;
    }
    l->items[l->count++] = item;
    return 0;
}

static void clear(struct list *l) {
    for (size_t i = 0; i < l->count; i++) free(l->items[i]);
    l->count = 0;
}

static char *copy(const xmlChar *s) { return s ? strdup((const char *)s) : NULL; }

static char *message(const char *text) {
    char *out = strdup(text);
    return out;
}

static char *read_pass(const char *path, const char *buffer, size_t length, void *context, custos_pan12_callback callback);

/* Two passes: the first only checks the whole file (so a problem anywhere rejects it before any
   conversation is passed on: the reader parses ahead of the nodes it hands out, so a single pass
   could not tell which conversations before a problem were read exactly); the second reads. */
char *custos_pan12_read(const char *path, const char *buffer, size_t length, void *context, custos_pan12_callback callback) {
    char *problem = read_pass(path, buffer, length, NULL, NULL);
    if (problem) return problem;
    return read_pass(path, buffer, length, context, callback);
}

static char *read_pass(const char *path, const char *buffer, size_t length, void *context, custos_pan12_callback callback) {
    xmlInitParser();
    struct problem problem = { .set = 0 };
    problem.text[0] = 0;
    current = &problem;
    xmlSetStructuredErrorFunc(&problem, on_error);
    xmlExternalEntityLoader previous_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(refuse_external);
    /* No XML_PARSE_HUGE: libxml2 keeps its limits, among them the bound on what entities may
       expand to against the input read (a 616-byte "billion laughs" reached 17 GB with it). */
    int options = XML_PARSE_NOENT | XML_PARSE_NONET | XML_PARSE_NOCDATA;
    xmlTextReaderPtr reader = NULL;
    if (path) reader = xmlReaderForFile(path, NULL, options);
    else if (length <= INT_MAX) reader = xmlReaderForMemory(buffer, (int)length, "pan12.xml", NULL, options);
    char *result = NULL;
    if (!reader) { result = message(problem.set ? problem.text : "cannot read the file"); goto done; }

    struct list lines = {0}, authors = {0}, times = {0}, texts = {0};
    char *id = NULL;
    int in_conversation = 0, conversation_line = 0, in_message = 0, stop = 0;
    char *line = NULL, *author = NULL, *time = NULL, *text = NULL;
    int status;
    while (!stop && (status = xmlTextReaderRead(reader)) == 1) {
        int type = xmlTextReaderNodeType(reader);
        const char *name = (const char *)xmlTextReaderConstLocalName(reader);
        if (!name) continue;
        if (type == XML_READER_TYPE_ELEMENT) {
            int empty = xmlTextReaderIsEmptyElement(reader);
            if (strcmp(name, "conversation") == 0) {
                xmlChar *i = xmlTextReaderGetAttribute(reader, BAD_CAST "id");
                free(id); id = copy(i); xmlFree(i);
                in_conversation = 1; conversation_line = xmlTextReaderGetParserLineNumber(reader);
                clear(&lines); clear(&authors); clear(&times); clear(&texts);
                if (empty) goto end_conversation;
            } else if (in_conversation && strcmp(name, "message") == 0) {
                xmlChar *l = xmlTextReaderGetAttribute(reader, BAD_CAST "line");
                free(line); line = l ? strdup((const char *)l) : NULL; xmlFree(l);
                free(author); free(time); free(text); author = time = text = NULL;
                in_message = 1;
                if (empty) goto end_message;
            } else if (in_message && (strcmp(name, "author") == 0 || strcmp(name, "time") == 0 || strcmp(name, "text") == 0)) {
                xmlChar *value = empty ? xmlStrdup(BAD_CAST "") : xmlTextReaderReadString(reader);
                char *v = copy(value ? value : BAD_CAST "");
                xmlFree(value);
                if (name[0] == 'a') { free(author); author = v; }
                else if (name[1] == 'i') { free(time); time = v; }
                else { free(text); text = v; }
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (in_message && strcmp(name, "message") == 0) {
            end_message:
                if (push(&lines, line) || push(&authors, author) || push(&times, time) || push(&texts, text)) {
                    line = author = time = text = NULL; result = message("out of memory"); stop = 1; break;
                }
                line = author = time = text = NULL;
                in_message = 0;
            } else if (in_conversation && strcmp(name, "conversation") == 0) {
            end_conversation:
                if (problem.set) { stop = 1; break; }
                custos_pan12_conversation c = {
                    .id = id, .line = conversation_line, .count = lines.count,
                    .lines = (const char *const *)lines.items, .authors = (const char *const *)authors.items,
                    .times = (const char *const *)times.items, .texts = (const char *const *)texts.items,
                };
                if (callback && callback(context, &c) != 0) stop = 1;
                clear(&lines); clear(&authors); clear(&times); clear(&texts);
                in_conversation = 0;
            }
        }
    }
    if (!result && problem.set) {
        size_t size = strlen(problem.text) + 96;
        result = malloc(size);
        if (result) snprintf(result, size, "%s; the file was not read (a PAN12 file is read exactly or not at all)", problem.text);
    } else if (!result && !stop && status != 0) {
        result = message("malformed XML; the file was not read");
    }
    free(id); free(line); free(author); free(time); free(text);
    clear(&lines); clear(&authors); clear(&times); clear(&texts);
    free(lines.items); free(authors.items); free(times.items); free(texts.items);
    xmlFreeTextReader(reader);
done:
    xmlSetExternalEntityLoader(previous_loader);
    xmlSetStructuredErrorFunc(NULL, NULL);
    current = NULL;
    return result;
}
