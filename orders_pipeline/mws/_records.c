/* The element texts of MWS record elements, read straight from the libxml2 tree lxml has built.
 *
 * The Python walk in records.py creates an lxml proxy object for every element it visits; this one reads the
 * same nodes in C and copies their UTF-8 text into one buffer per page, creating no Python object per value.
 * `gather` lays the texts of many pages out column by column as Arrow string buffers. Its values are the
 * Python walk's, value for value (tests/test_records.py compares them). It reads lxml's element struct, so it
 * refuses to load beside an lxml or libxml2 other than the one whose headers it was compiled with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <libxml/tree.h>
#include <libxml/xmlversion.h>
#include "lxml-version.h"
#include "lxml.etree.h"

#define LAYOUT_CAPSULE "orders_pipeline.mws._records.Layout"

enum { LEAF = 0, GROUP = 1, LIST = 2 };

typedef struct Table Table;

typedef struct {
    char *href; /* NULL: the element has no namespace */
    char *name;
    int kind;
    Py_ssize_t index; /* LEAF and LIST: the row position */
    Table *group;     /* GROUP: the layout of its children */
} Entry;

struct Table {
    Py_ssize_t size;
    Py_ssize_t cursor; /* where the next lookup starts: MWS sends elements in a fixed order */
    Entry *entries;
};

typedef struct {
    Table *root;
    Py_ssize_t width;
    int *kinds;   /* per row position: LIST, or LEAF (also for positions no tag fills) */
    Py_ssize_t path_size;
    Entry *path;  /* the steps from a document root to the parent of the records (tags only) */
    Entry record; /* the tag of the records (tag only) */
    Py_ssize_t bytes_per_row; /* text bytes per record on the last page read: what the next page reserves */
} Layout;

static PyTypeObject *element_type;

/* ------------------------------------------------------------------------------------------ layout tables */

static void free_table(Table *table)
{
    if (table == NULL)
        return;
    for (Py_ssize_t i = 0; i < table->size; i++) {
        PyMem_Free(table->entries[i].href);
        PyMem_Free(table->entries[i].name);
        free_table(table->entries[i].group);
    }
    PyMem_Free(table->entries);
    PyMem_Free(table);
}

static char *copy_bytes(const char *start, Py_ssize_t length)
{
    char *copy = PyMem_Malloc(length + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, start, length);
    copy[length] = '\0';
    return copy;
}

/* Split a Clark-notation tag ('{href}name' or 'name') into freshly allocated parts; href NULL without '{'. */
static int split_tag(PyObject *tag, char **href, char **name)
{
    Py_ssize_t length;
    const char *text;
    *href = NULL;
    *name = NULL;
    if (!PyUnicode_Check(tag)) {
        PyErr_SetString(PyExc_TypeError, "layout tags must be str");
        return -1;
    }
    text = PyUnicode_AsUTF8AndSize(tag, &length);
    if (text == NULL)
        return -1;
    if (length > 0 && text[0] == '{') {
        const char *close = memchr(text, '}', length);
        if (close == NULL) {
            PyErr_Format(PyExc_ValueError, "unclosed namespace in tag %R", tag);
            return -1;
        }
        if ((*href = copy_bytes(text + 1, close - text - 1)) == NULL)
            return -1;
        length -= close + 1 - text;
        text = close + 1;
    }
    if ((*name = copy_bytes(text, length)) == NULL) {
        PyMem_Free(*href);
        *href = NULL;
        return -1;
    }
    return 0;
}

/* Read a row position into the entry and claim it for the entry's kind; kinds[i] < 0 marks a free position. */
static int row_index(PyObject *value, Entry *entry, Py_ssize_t width, int *kinds)
{
    Py_ssize_t index = PyLong_AsSsize_t(value);
    if (index == -1 && PyErr_Occurred())
        return -1;
    if (index < 0 || index >= width) {
        PyErr_Format(PyExc_ValueError, "row position %zd outside a row of %zd", index, width);
        return -1;
    }
    if (kinds[index] >= 0 && kinds[index] != entry->kind) {
        PyErr_Format(PyExc_ValueError, "row position %zd is both a text and a list", index);
        return -1;
    }
    kinds[index] = entry->kind;
    entry->index = index;
    return 0;
}

static Table *compile_table(PyObject *mapping, Py_ssize_t width, int *kinds);

static int compile_entry(Entry *entry, PyObject *tag, PyObject *target, Py_ssize_t width, int *kinds)
{
    if (split_tag(tag, &entry->href, &entry->name) < 0)
        return -1;
    if (PyLong_Check(target)) {
        entry->kind = LEAF;
        return row_index(target, entry, width, kinds);
    }
    if (PyDict_Check(target)) {
        entry->kind = GROUP;
        entry->group = compile_table(target, width, kinds);
        return entry->group == NULL ? -1 : 0;
    }
    if (PyTuple_Check(target) && PyTuple_GET_SIZE(target) == 2) {
        entry->kind = LIST;
        return row_index(PyTuple_GET_ITEM(target, 1), entry, width, kinds);
    }
    PyErr_Format(PyExc_TypeError, "layout target for %R must be an int, a dict or a (kind, int) pair", tag);
    return -1;
}

static Table *compile_table(PyObject *mapping, Py_ssize_t width, int *kinds)
{
    PyObject *tag, *target;
    Py_ssize_t position = 0, i = 0;
    Table *table = PyMem_Calloc(1, sizeof(Table));
    if (table == NULL)
        return (Table *)PyErr_NoMemory();
    table->entries = PyMem_Calloc(PyDict_GET_SIZE(mapping) + 1, sizeof(Entry));
    if (table->entries == NULL) {
        PyMem_Free(table);
        return (Table *)PyErr_NoMemory();
    }
    while (PyDict_Next(mapping, &position, &tag, &target)) {
        table->size = i + 1;
        if (compile_entry(&table->entries[i++], tag, target, width, kinds) < 0) {
            free_table(table);
            return NULL;
        }
    }
    return table;
}

static void free_layout_fields(Layout *layout)
{
    free_table(layout->root);
    PyMem_Free(layout->kinds);
    for (Py_ssize_t i = 0; i < layout->path_size; i++) {
        PyMem_Free(layout->path[i].href);
        PyMem_Free(layout->path[i].name);
    }
    PyMem_Free(layout->path);
    PyMem_Free(layout->record.href);
    PyMem_Free(layout->record.name);
    PyMem_Free(layout);
}

static void free_layout(PyObject *capsule)
{
    Layout *layout = PyCapsule_GetPointer(capsule, LAYOUT_CAPSULE);
    if (layout != NULL)
        free_layout_fields(layout);
}

static int compile_path(Layout *layout, PyObject *path, PyObject *record_tag)
{
    layout->path = PyMem_Calloc(PyTuple_GET_SIZE(path) + 1, sizeof(Entry));
    if (layout->path == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(path); i++) {
        layout->path_size = i + 1;
        if (split_tag(PyTuple_GET_ITEM(path, i), &layout->path[i].href, &layout->path[i].name) < 0)
            return -1;
    }
    return split_tag(record_tag, &layout->record.href, &layout->record.name);
}

/* Every row position starts free (-1); the layout's entries claim theirs. */
static int compile_kinds(Layout *layout)
{
    if (layout->width < 0) {
        PyErr_SetString(PyExc_ValueError, "a row cannot have a negative width");
        return -1;
    }
    if ((layout->kinds = PyMem_Malloc((layout->width + 1) * sizeof(int))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < layout->width; i++)
        layout->kinds[i] = -1;
    return 0;
}

static PyObject *compile_layout(PyObject *module, PyObject *args)
{
    PyObject *mapping, *path, *record_tag, *capsule;
    Py_ssize_t width;
    Layout *layout;
    if (!PyArg_ParseTuple(args, "O!nO!U:compile_layout", &PyDict_Type, &mapping, &width, &PyTuple_Type, &path,
                          &record_tag))
        return NULL;
    if ((layout = PyMem_Calloc(1, sizeof(Layout))) == NULL)
        return PyErr_NoMemory();
    layout->width = width;
    if (compile_kinds(layout) < 0 || (layout->root = compile_table(mapping, width, layout->kinds)) == NULL
        || compile_path(layout, path, record_tag) < 0) {
        free_layout_fields(layout);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < width; i++)
        if (layout->kinds[i] < 0)
            layout->kinds[i] = LEAF;
    if ((capsule = PyCapsule_New(layout, LAYOUT_CAPSULE, free_layout)) == NULL)
        free_layout_fields(layout);
    return capsule;
}

/* ------------------------------------------------------------------------------------------- page texts */

/* Where a value is: for a text, `length` bytes of the page's data from `start`; for a list, `length` members
 * of the page's member spans from `start`. A negative length is None (no text node, or no list element).
 * 32 bits suffice: a page's texts are fewer bytes than its body (at most 64 MiB), and `append` checks. */
typedef struct {
    int32_t start;
    int32_t length;
} Span;

typedef struct {
    PyObject_HEAD
    PyObject *capsule; /* the layout the texts were read with: their width and which positions are lists */
    Layout *layout;
    Py_ssize_t rows, cell_capacity;
    Span *cells; /* `width` per row */
    Py_ssize_t members, member_capacity;
    Span *member_spans;
    Py_ssize_t data_size, data_capacity;
    char *data;
    const xmlNs *known_ns; /* while reading: a namespace of this tree found to have the href `known_href` */
    const char *known_href;
} Texts;

static PyTypeObject texts_type;

/* Make room for `needed` items of `size` bytes: exactly that the first time, then at least doubling. */
static int reserve(void **buffer, Py_ssize_t *capacity, Py_ssize_t needed, size_t size)
{
    Py_ssize_t grown = *capacity;
    void *moved;
    if (needed <= *capacity)
        return 0;
    while (grown < needed)
        grown = grown == 0 ? needed : grown * 2;
    if ((size_t)grown > PY_SSIZE_T_MAX / size || (moved = PyMem_Realloc(*buffer, grown * size)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buffer = moved;
    *capacity = grown;
    return 0;
}

static Texts *new_texts(PyObject *capsule, Layout *layout)
{
    Texts *texts = PyObject_New(Texts, &texts_type);
    if (texts == NULL)
        return NULL;
    texts->capsule = Py_NewRef(capsule);
    texts->layout = layout;
    texts->rows = texts->cell_capacity = texts->members = texts->member_capacity = 0;
    texts->data_size = texts->data_capacity = 0;
    texts->cells = texts->member_spans = NULL;
    texts->data = NULL;
    texts->known_ns = NULL;
    texts->known_href = NULL;
    return texts;
}

static void texts_dealloc(Texts *texts)
{
    PyMem_Free(texts->cells);
    PyMem_Free(texts->member_spans);
    PyMem_Free(texts->data);
    Py_DECREF(texts->capsule);
    PyObject_Free(texts);
}

static Span *cell(const Texts *texts, Py_ssize_t row, Py_ssize_t column)
{
    return &texts->cells[row * texts->layout->width + column];
}

/* A row of None values at the end; its position. */
static Py_ssize_t add_row(Texts *texts)
{
    Py_ssize_t width = texts->layout->width;
    if (reserve((void **)&texts->cells, &texts->cell_capacity, (texts->rows + 1) * width, sizeof(Span)) < 0)
        return -1;
    for (Py_ssize_t column = 0; column < width; column++)
        *cell(texts, texts->rows, column) = (Span){0, -1};
    return texts->rows++;
}

/* ------------------------------------------------------------------------------------------- tree walk */

/* Whether the node's namespace has this href; the last namespace that had it is remembered for the walk, as
 * every element of an MWS body shares the one declared on its root. */
static int same_href(Texts *texts, const xmlNs *ns, const char *href)
{
    const xmlChar *node_href = ns != NULL ? ns->href : NULL;
    if (href == NULL || node_href == NULL)
        return href == NULL && node_href == NULL;
    if (ns == texts->known_ns && href == texts->known_href)
        return 1;
    if (strcmp((const char *)node_href, href) != 0)
        return 0;
    texts->known_ns = ns;
    texts->known_href = href;
    return 1;
}

static int same_tag(Texts *texts, const xmlNode *node, const char *href, const char *name)
{
    return node->name[0] == (xmlChar)name[0] && strcmp((const char *)node->name, name) == 0
        && same_href(texts, node->ns, href);
}

static Entry *lookup(Texts *texts, Table *table, const xmlNode *node)
{
    Py_ssize_t i = table->cursor;
    for (Py_ssize_t step = 0; step < table->size; step++, i++) {
        if (i == table->size)
            i = 0;
        if (same_tag(texts, node, table->entries[i].href, table->entries[i].name)) {
            table->cursor = i + 1 == table->size ? 0 : i + 1;
            return &table->entries[i];
        }
    }
    return NULL;
}

/* lxml's rule for .text: the run of text and CDATA nodes at the start, stepping over XInclude markers. */
static const xmlNode *text_node_or_skip(const xmlNode *node)
{
    while (node != NULL) {
        if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE)
            return node;
        if (node->type != XML_XINCLUDE_START && node->type != XML_XINCLUDE_END)
            return NULL;
        node = node->next;
    }
    return NULL;
}

/* Append bytes to the page's data. */
static int append(Texts *texts, const char *bytes, Py_ssize_t length)
{
    if (length > INT32_MAX - texts->data_size) {
        PyErr_SetString(PyExc_OverflowError, "more than 2 GiB of text in one page");
        return -1;
    }
    if (length == 0)
        return 0;
    if (reserve((void **)&texts->data, &texts->data_capacity, texts->data_size + length, 1) < 0)
        return -1;
    memcpy(texts->data + texts->data_size, bytes, length);
    texts->data_size += length;
    return 0;
}

/* Append what lxml's element.text returns to the data: None without text nodes, else their joined text. */
static int read_text(Texts *texts, const xmlNode *element, Span *span)
{
    const xmlNode *first = text_node_or_skip(element->children);
    int32_t start = (int32_t)texts->data_size;
    for (const xmlNode *node = first; node != NULL; node = text_node_or_skip(node->next)) {
        const char *content = (const char *)node->content;
        if (content != NULL && append(texts, content, strlen(content)) < 0)
            return -1;
    }
    *span = (Span){start, first != NULL ? (int32_t)texts->data_size - start : -1};
    return 0;
}

/* Append the text of every child element as the members of one list value. */
static int read_members(Texts *texts, const xmlNode *element, Span *list)
{
    int32_t first = (int32_t)texts->members;
    for (const xmlNode *child = element->children; child != NULL; child = child->next) {
        Span member;
        if (child->type != XML_ELEMENT_NODE)
            continue;
        if (texts->members == INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "more than 2**31 list members in one page");
            return -1;
        }
        if (read_text(texts, child, &member) < 0
            || reserve((void **)&texts->member_spans, &texts->member_capacity, texts->members + 1, sizeof(Span)) < 0)
            return -1;
        texts->member_spans[texts->members++] = member;
    }
    *list = (Span){first, (int32_t)texts->members - first};
    return 0;
}

static int fill(Texts *texts, Py_ssize_t row, const xmlNode *element, Table *table)
{
    for (const xmlNode *child = element->children; child != NULL; child = child->next) {
        Entry *entry;
        Span value;
        if (child->type != XML_ELEMENT_NODE || (entry = lookup(texts, table, child)) == NULL)
            continue;
        if (entry->kind == GROUP) {
            if (fill(texts, row, child, entry->group) < 0)
                return -1;
            continue;
        }
        if ((entry->kind == LEAF ? read_text(texts, child, &value) : read_members(texts, child, &value)) < 0)
            return -1;
        *cell(texts, row, entry->index) = value;
    }
    return 0;
}

static int read_row(Texts *texts, const xmlNode *element)
{
    Py_ssize_t row = add_row(texts);
    return row < 0 ? -1 : fill(texts, row, element, texts->layout->root);
}

/* ------------------------------------------------------------------------------------ texts as objects */

static PyObject *text_object(const Texts *texts, const Span *span)
{
    if (span->length < 0)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(texts->data + span->start, span->length, NULL);
}

static PyObject *list_object(const Texts *texts, const Span *span)
{
    PyObject *list;
    if (span->length < 0)
        Py_RETURN_NONE;
    if ((list = PyList_New(span->length)) == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < span->length; i++) {
        PyObject *member = text_object(texts, &texts->member_spans[span->start + i]);
        if (member == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, member);
    }
    return list;
}

/* The value at a row and column, as the Python walk has it: str or None, or a list of them for a list. */
static PyObject *value_object(const Texts *texts, Py_ssize_t row, Py_ssize_t column)
{
    const Span *span = cell(texts, row, column);
    return texts->layout->kinds[column] == LIST ? list_object(texts, span) : text_object(texts, span);
}

/* A list of `count` values: those of one row (`step` 1 from its first cell) or of one column (`step` the width). */
static PyObject *values_object(const Texts *texts, Py_ssize_t first, Py_ssize_t count, Py_ssize_t step)
{
    PyObject *values = PyList_New(count);
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t at = first + i * step;
        PyObject *value = value_object(texts, at / texts->layout->width, at % texts->layout->width);
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyList_SET_ITEM(values, i, value);
    }
    return values;
}

static Py_ssize_t texts_length(Texts *texts)
{
    return texts->rows;
}

/* A row position given from Python, checked to be inside the row and, if `texts_only`, not to hold lists. */
static Py_ssize_t position_of(const Texts *texts, PyObject *index, int texts_only)
{
    Py_ssize_t column = PyLong_AsSsize_t(index);
    if (column == -1 && PyErr_Occurred())
        return -1;
    if (column < 0 || column >= texts->layout->width) {
        PyErr_Format(PyExc_IndexError, "column %zd outside a row of %zd", column, texts->layout->width);
        return -1;
    }
    if (texts_only && texts->layout->kinds[column] == LIST) {
        PyErr_Format(PyExc_TypeError, "column %zd holds lists, not texts", column);
        return -1;
    }
    return column;
}

/* Append a str, or nothing for None, to the data; where it is. */
static int append_object(Texts *texts, PyObject *text, Span *span)
{
    const char *bytes;
    Py_ssize_t length;
    int32_t start = (int32_t)texts->data_size;
    if (text == Py_None) {
        *span = (Span){0, -1};
        return 0;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "a text must be str or None, not %.200s", Py_TYPE(text)->tp_name);
        return -1;
    }
    if ((bytes = PyUnicode_AsUTF8AndSize(text, &length)) == NULL || append(texts, bytes, length) < 0)
        return -1;
    *span = (Span){start, (int32_t)length};
    return 0;
}

static PyObject *texts_column(Texts *texts, PyObject *arg)
{
    Py_ssize_t column = position_of(texts, arg, 0);
    return column < 0 ? NULL : values_object(texts, column, texts->rows, texts->layout->width);
}

/* Whether a text with a byte of 0x80 or more is all whitespace as str.isspace() sees it; -1 on error. */
static int decoded_blank(const Texts *texts, const Span *span)
{
    PyObject *text = text_object(texts, span);
    int blank = 1;
    if (text == NULL)
        return -1;
    for (Py_ssize_t i = 0; blank && i < PyUnicode_GET_LENGTH(text); i++)
        blank = Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, i));
    Py_DECREF(text);
    return blank;
}

/* Whether a value is None or empty after str.strip(): ASCII bytes are judged as they are, others decoded. */
static int blank(const Texts *texts, const Span *span)
{
    const unsigned char *bytes = (const unsigned char *)texts->data + span->start;
    if (span->length < 0)
        return 1;
    for (int32_t i = 0; i < span->length; i++) {
        if (bytes[i] >= 0x80)
            return decoded_blank(texts, span);
        if (!Py_UNICODE_ISSPACE(bytes[i]))
            return 0;
    }
    return 1;
}

static PyObject *texts_has_blank(Texts *texts, PyObject *arg)
{
    Py_ssize_t column = position_of(texts, arg, 1);
    if (column < 0)
        return NULL;
    for (Py_ssize_t row = 0; row < texts->rows; row++) {
        int found = blank(texts, cell(texts, row, column));
        if (found != 0)
            return found < 0 ? NULL : Py_NewRef(Py_True);
    }
    Py_RETURN_FALSE;
}

static PyObject *texts_fill(Texts *texts, PyObject *args)
{
    PyObject *index, *text;
    Py_ssize_t column;
    Span span;
    if (!PyArg_ParseTuple(args, "OO:fill", &index, &text))
        return NULL;
    if ((column = position_of(texts, index, 1)) < 0 || append_object(texts, text, &span) < 0)
        return NULL;
    for (Py_ssize_t row = 0; row < texts->rows; row++)
        *cell(texts, row, column) = span;
    Py_RETURN_NONE;
}

static PyObject *texts_set_column(Texts *texts, PyObject *args)
{
    PyObject *index, *values, *sequence;
    Py_ssize_t column;
    if (!PyArg_ParseTuple(args, "OO:set_column", &index, &values))
        return NULL;
    if ((column = position_of(texts, index, 1)) < 0
        || (sequence = PySequence_Fast(values, "set_column takes a sequence of texts")) == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(sequence) != texts->rows) {
        PyErr_Format(PyExc_ValueError, "%zd texts for %zd records", PySequence_Fast_GET_SIZE(sequence), texts->rows);
        Py_DECREF(sequence);
        return NULL;
    }
    for (Py_ssize_t row = 0; row < texts->rows; row++)
        if (append_object(texts, PySequence_Fast_GET_ITEM(sequence, row), cell(texts, row, column)) < 0) {
            Py_DECREF(sequence);
            return NULL;
        }
    Py_DECREF(sequence);
    Py_RETURN_NONE;
}

static PyMethodDef texts_methods[] = {
    {"column", (PyCFunction)texts_column, METH_O, "column(index) -> every record's value at that row position."},
    {"has_blank", (PyCFunction)texts_has_blank, METH_O,
     "has_blank(index) -> whether some record's text there is None or empty once stripped."},
    {"fill", (PyCFunction)texts_fill, METH_VARARGS, "fill(index, text): every record gets this text (or None) there."},
    {"set_column", (PyCFunction)texts_set_column, METH_VARARGS,
     "set_column(index, texts): the records get these texts (str or None), one each, at that row position."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods texts_sequence = {.sq_length = (lenfunc)texts_length};

static PyTypeObject texts_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "orders_pipeline.mws._records.Texts",
    .tp_doc = "The element texts of one page's records, as read with a compiled layout.",
    .tp_basicsize = sizeof(Texts),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)texts_dealloc,
    .tp_as_sequence = &texts_sequence,
    .tp_methods = texts_methods,
};

/* ------------------------------------------------------------------------------------------ reading */

static const xmlNode *element_of(PyObject *object)
{
    const xmlNode *node = ((struct LxmlElement *)object)->_c_node;
    if (node == NULL)
        PyErr_SetString(PyExc_ValueError, "the element has no tree");
    return node;
}

static Layout *layout_of(PyObject *capsule)
{
    return PyCapsule_GetPointer(capsule, LAYOUT_CAPSULE);
}

static const xmlNode *first_child_tagged(Texts *texts, const xmlNode *parent, const Entry *tag)
{
    for (const xmlNode *child = parent->children; child != NULL; child = child->next)
        if (child->type == XML_ELEMENT_NODE && same_tag(texts, child, tag->href, tag->name))
            return child;
    return NULL;
}

static PyObject *read_record(PyObject *module, PyObject *args)
{
    PyObject *element, *capsule, *row = NULL;
    const xmlNode *node;
    Layout *layout;
    Texts *texts;
    if (!PyArg_ParseTuple(args, "O!O:read_record", element_type, &element, &capsule))
        return NULL;
    if ((node = element_of(element)) == NULL || (layout = layout_of(capsule)) == NULL)
        return NULL;
    if ((texts = new_texts(capsule, layout)) == NULL)
        return NULL;
    if (read_row(texts, node) == 0)
        row = values_object(texts, 0, layout->width, 1);
    Py_DECREF(texts);
    return row;
}

static int is_record(Texts *texts, const xmlNode *node)
{
    const Entry *record = &texts->layout->record;
    return node->type == XML_ELEMENT_NODE && same_tag(texts, node, record->href, record->name);
}

#define MAX_TEXT_RESERVED (1 << 20)

/* Allocate the cells of every record below `parent` at once, and text for as many records as the last page's
 * (up to 1 MiB: a page of larger records grows its buffer as it reads). */
static int reserve_page(Texts *texts, const xmlNode *parent)
{
    Py_ssize_t records = 0, per_record = texts->layout->bytes_per_row + 64;
    for (const xmlNode *child = parent->children; child != NULL; child = child->next)
        records += is_record(texts, child);
    if (records == 0)
        return 0;
    if (reserve((void **)&texts->cells, &texts->cell_capacity, records * texts->layout->width, sizeof(Span)) < 0)
        return -1;
    return reserve((void **)&texts->data, &texts->data_capacity,
                   per_record < MAX_TEXT_RESERVED / records ? records * per_record : MAX_TEXT_RESERVED, 1);
}

static int read_rows(Texts *texts, const xmlNode *parent)
{
    for (const xmlNode *child = parent->children; child != NULL; child = child->next)
        if (is_record(texts, child) && read_row(texts, child) < 0)
            return -1;
    return 0;
}

static PyObject *read_records(PyObject *module, PyObject *args)
{
    PyObject *root, *capsule;
    const xmlNode *parent;
    Layout *layout;
    Texts *texts;
    Py_ssize_t depth;
    if (!PyArg_ParseTuple(args, "O!O:read_records", element_type, &root, &capsule))
        return NULL;
    if ((parent = element_of(root)) == NULL || (layout = layout_of(capsule)) == NULL)
        return NULL;
    if ((texts = new_texts(capsule, layout)) == NULL)
        return NULL;
    for (depth = 0; depth < layout->path_size; depth++)
        if ((parent = first_child_tagged(texts, parent, &layout->path[depth])) == NULL)
            return Py_BuildValue("(Nn)", texts, depth);
    if (reserve_page(texts, parent) < 0 || read_rows(texts, parent) < 0) {
        Py_DECREF(texts);
        return NULL;
    }
    if (texts->rows > 0)
        layout->bytes_per_row = texts->data_size / texts->rows;
    return Py_BuildValue("(Nn)", texts, depth);
}

/* --------------------------------------------------------------------------------- Arrow string buffers */

/* An Arrow string array being laid out: measured in a first pass, then written in a second. */
typedef struct {
    Py_ssize_t length, nulls, bytes; /* measured */
    Py_ssize_t written;              /* values written so far; `bytes` then counts the bytes written */
    PyObject *validity, *offsets, *data;
} Strings;

static void measure(Strings *strings, const Span *span)
{
    strings->length++;
    if (span->length < 0)
        strings->nulls++;
    else
        strings->bytes += span->length;
}

static void clear_strings(Strings *strings)
{
    Py_CLEAR(strings->validity);
    Py_CLEAR(strings->offsets);
    Py_CLEAR(strings->data);
}

/* A zeroed validity bitmap of `length` bits, or None when no value is null. */
static PyObject *new_validity(Py_ssize_t length, Py_ssize_t nulls)
{
    PyObject *bitmap;
    if (nulls == 0)
        return Py_NewRef(Py_None);
    if ((bitmap = PyBytes_FromStringAndSize(NULL, (length + 7) / 8)) != NULL)
        memset(PyBytes_AS_STRING(bitmap), 0, (length + 7) / 8);
    return bitmap;
}

static void set_valid(PyObject *validity, Py_ssize_t position)
{
    if (validity != Py_None)
        PyBytes_AS_STRING(validity)[position / 8] |= (char)(1 << (position % 8));
}

static PyObject *new_offsets(Py_ssize_t length)
{
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (length + 1) * sizeof(int32_t));
    if (offsets != NULL)
        ((int32_t *)PyBytes_AS_STRING(offsets))[0] = 0;
    return offsets;
}

static int allocate_strings(Strings *strings)
{
    if (strings->bytes > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2 GiB of text in one column");
        return -1;
    }
    strings->validity = new_validity(strings->length, strings->nulls);
    strings->offsets = new_offsets(strings->length);
    strings->data = PyBytes_FromStringAndSize(NULL, strings->bytes);
    strings->bytes = strings->written = 0;
    if (strings->validity == NULL || strings->offsets == NULL || strings->data == NULL) {
        clear_strings(strings);
        return -1;
    }
    return 0;
}

/* Write one value at position `*at`, its bytes from `*byte_at`, and move both cursors past it. */
static void put_at(Strings *strings, Py_ssize_t *at, Py_ssize_t *byte_at, const Span *span, const char *data)
{
    if (span->length > 0)
        memcpy(PyBytes_AS_STRING(strings->data) + *byte_at, data + span->start, span->length);
    if (span->length >= 0) {
        *byte_at += span->length;
        set_valid(strings->validity, *at);
    }
    ((int32_t *)PyBytes_AS_STRING(strings->offsets))[++*at] = (int32_t)*byte_at;
}

/* Write the next value of a string array filled in order. */
static void put(Strings *strings, const Span *span, const char *data)
{
    put_at(strings, &strings->written, &strings->bytes, span, data);
}

/* (length, null count, validity bitmap or None, int32 offsets, data), the buffers moved into the tuple. */
static PyObject *strings_tuple(Strings *strings)
{
    PyObject *tuple = Py_BuildValue("(nnNNN)", strings->length, strings->nulls, strings->validity, strings->offsets,
                                    strings->data);
    strings->validity = strings->offsets = strings->data = NULL;
    return tuple;
}

/* One text column in the gathered texts: measured, then written from its own place on. */
typedef struct {
    Py_ssize_t column;
    Py_ssize_t nulls, bytes; /* measured */
    Py_ssize_t at, byte_at;  /* where its next value and its next byte go */
} Slot;

/* One list column of the gathered pages: its lists and their members' texts. */
typedef struct {
    Py_ssize_t column;
    Strings members;
    Py_ssize_t length, nulls, written;
    PyObject *validity, *offsets;
} Lists;

typedef struct {
    Py_ssize_t rows;
    Py_ssize_t slot_count, list_count;
    Slot *slots;
    Lists *lists;
    Strings texts; /* every slot's values end to end, slot after slot */
} Gathered;

static void measure_slot(Slot *slot, const Span *span)
{
    if (span->length < 0)
        slot->nulls++;
    else
        slot->bytes += span->length;
}

static void measure_lists(Lists *lists, const Texts *page, const Span *span)
{
    lists->length++;
    if (span->length < 0)
        lists->nulls++;
    for (int32_t i = 0; i < span->length; i++)
        measure(&lists->members, &page->member_spans[span->start + i]);
}

/* Allocate the texts of every slot and place each slot's values after the previous slot's. */
static int allocate_texts(Gathered *gathered)
{
    Strings *texts = &gathered->texts;
    Py_ssize_t byte_at = 0;
    if (gathered->slot_count > 0 && gathered->rows > INT32_MAX / gathered->slot_count) {
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 texts in one batch");
        return -1;
    }
    texts->length = gathered->rows * gathered->slot_count;
    for (Py_ssize_t k = 0; k < gathered->slot_count; k++) {
        Slot *slot = &gathered->slots[k];
        slot->at = k * gathered->rows;
        slot->byte_at = byte_at;
        byte_at += slot->bytes;
        texts->nulls += slot->nulls;
    }
    texts->bytes = byte_at;
    return allocate_strings(texts);
}

static int allocate_lists(Lists *lists)
{
    if (lists->members.length > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 list members in one batch");
        return -1;
    }
    if (allocate_strings(&lists->members) < 0)
        return -1;
    lists->validity = new_validity(lists->length, lists->nulls);
    lists->offsets = new_offsets(lists->length);
    return lists->validity != NULL && lists->offsets != NULL ? 0 : -1;
}

static void put_lists(Lists *lists, const Texts *page, const Span *span)
{
    if (span->length >= 0)
        set_valid(lists->validity, lists->written);
    for (int32_t i = 0; i < span->length; i++)
        put(&lists->members, &page->member_spans[span->start + i], page->data);
    ((int32_t *)PyBytes_AS_STRING(lists->offsets))[++lists->written] = (int32_t)lists->members.written;
}

/* (length, null count, validity or None, int32 offsets into the members, the members' `strings_tuple`). */
static PyObject *lists_tuple(Lists *lists)
{
    PyObject *members = strings_tuple(&lists->members), *tuple;
    if (members == NULL)
        return NULL;
    tuple = Py_BuildValue("(nnNNN)", lists->length, lists->nulls, lists->validity, lists->offsets, members);
    lists->validity = lists->offsets = NULL;
    return tuple;
}

static void clear_gathered(Gathered *gathered)
{
    clear_strings(&gathered->texts);
    for (Py_ssize_t l = 0; l < gathered->list_count; l++) {
        clear_strings(&gathered->lists[l].members);
        Py_CLEAR(gathered->lists[l].validity);
        Py_CLEAR(gathered->lists[l].offsets);
    }
    PyMem_Free(gathered->slots);
    PyMem_Free(gathered->lists);
}

/* The pages, checked to be Texts read with layouts of one width and the same list positions. */
static int check_pages(Texts **pages, Py_ssize_t count)
{
    if (count == 0) {
        PyErr_SetString(PyExc_ValueError, "gather takes at least one Texts");
        return -1;
    }
    for (Py_ssize_t page = 0; page < count; page++) {
        if (!Py_IS_TYPE(pages[page], &texts_type)) {
            PyErr_SetString(PyExc_TypeError, "gather takes a sequence of Texts");
            return -1;
        }
        if (pages[page]->layout->width != pages[0]->layout->width
            || memcmp(pages[page]->layout->kinds, pages[0]->layout->kinds, pages[0]->layout->width * sizeof(int))) {
            PyErr_SetString(PyExc_ValueError, "gather takes Texts of one row shape");
            return -1;
        }
    }
    return 0;
}

/* A slot per text column of `order` (checked), and a Lists per list column of the layout. */
static int plan(Gathered *gathered, const Layout *layout, PyObject *order)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(order);
    gathered->slots = PyMem_Calloc(count + 1, sizeof(Slot));
    gathered->lists = PyMem_Calloc(layout->width + 1, sizeof(Lists));
    if (gathered->slots == NULL || gathered->lists == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t column = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(order, k));
        if (column == -1 && PyErr_Occurred())
            return -1;
        if (column < 0 || column >= layout->width || layout->kinds[column] == LIST) {
            PyErr_Format(PyExc_ValueError, "%zd is not a text column of a row of %zd", column, layout->width);
            return -1;
        }
        gathered->slots[gathered->slot_count++].column = column;
    }
    for (Py_ssize_t column = 0; column < layout->width; column++)
        if (layout->kinds[column] == LIST)
            gathered->lists[gathered->list_count++].column = column;
    return 0;
}

/* Measure every value the pages hold, allocate, then write them all, a row at a time. */
static int lay_out(Gathered *gathered, Texts **pages, Py_ssize_t count)
{
    for (Py_ssize_t page = 0; page < count; page++)
        for (Py_ssize_t row = 0; row < pages[page]->rows; row++, gathered->rows++) {
            for (Py_ssize_t k = 0; k < gathered->slot_count; k++)
                measure_slot(&gathered->slots[k], cell(pages[page], row, gathered->slots[k].column));
            for (Py_ssize_t l = 0; l < gathered->list_count; l++)
                measure_lists(&gathered->lists[l], pages[page], cell(pages[page], row, gathered->lists[l].column));
        }
    if (allocate_texts(gathered) < 0)
        return -1;
    for (Py_ssize_t l = 0; l < gathered->list_count; l++)
        if (allocate_lists(&gathered->lists[l]) < 0)
            return -1;
    for (Py_ssize_t page = 0; page < count; page++)
        for (Py_ssize_t row = 0; row < pages[page]->rows; row++) {
            for (Py_ssize_t k = 0; k < gathered->slot_count; k++) {
                Slot *slot = &gathered->slots[k];
                put_at(&gathered->texts, &slot->at, &slot->byte_at, cell(pages[page], row, slot->column),
                       pages[page]->data);
            }
            for (Py_ssize_t l = 0; l < gathered->list_count; l++)
                put_lists(&gathered->lists[l], pages[page], cell(pages[page], row, gathered->lists[l].column));
        }
    return 0;
}

/* (the texts' `strings_tuple`, {list column: its `lists_tuple`}). */
static PyObject *gathered_tuple(Gathered *gathered)
{
    PyObject *lists = PyDict_New(), *texts;
    for (Py_ssize_t l = 0; lists != NULL && l < gathered->list_count; l++) {
        PyObject *buffers = lists_tuple(&gathered->lists[l]), *column = PyLong_FromSsize_t(gathered->lists[l].column);
        if (buffers == NULL || column == NULL || PyDict_SetItem(lists, column, buffers) < 0)
            Py_CLEAR(lists);
        Py_XDECREF(buffers);
        Py_XDECREF(column);
    }
    if (lists == NULL)
        return NULL;
    if ((texts = strings_tuple(&gathered->texts)) == NULL) {
        Py_DECREF(lists);
        return NULL;
    }
    return Py_BuildValue("(NN)", texts, lists);
}

static PyObject *gather(PyObject *module, PyObject *args)
{
    PyObject *pages_argument, *order_argument, *pages = NULL, *order = NULL, *result = NULL;
    Gathered gathered = {0};
    if (!PyArg_ParseTuple(args, "OO:gather", &pages_argument, &order_argument))
        return NULL;
    if ((pages = PySequence_Fast(pages_argument, "gather takes a sequence of Texts")) == NULL
        || (order = PySequence_Fast(order_argument, "gather takes a sequence of row positions")) == NULL
        || check_pages((Texts **)PySequence_Fast_ITEMS(pages), PySequence_Fast_GET_SIZE(pages)) < 0)
        goto done;
    if (plan(&gathered, ((Texts *)PySequence_Fast_GET_ITEM(pages, 0))->layout, order) == 0
        && lay_out(&gathered, (Texts **)PySequence_Fast_ITEMS(pages), PySequence_Fast_GET_SIZE(pages)) == 0)
        result = gathered_tuple(&gathered);
done:
    clear_gathered(&gathered);
    Py_XDECREF(pages);
    Py_XDECREF(order);
    return result;
}

/* ------------------------------------------------------------------------------------------------ module */

static int check_versions(PyObject *etree)
{
    PyObject *version = PyObject_GetAttrString(etree, "__version__");
    PyObject *libxml = PyObject_GetAttrString(etree, "LIBXML_COMPILED_VERSION");
    PyObject *expected_libxml = Py_BuildValue("(iii)", LIBXML_VERSION / 10000, LIBXML_VERSION / 100 % 100,
                                              LIBXML_VERSION % 100);
    int same = version != NULL && libxml != NULL && expected_libxml != NULL && PyUnicode_Check(version)
        && PyUnicode_CompareWithASCIIString(version, LXML_VERSION_STRING) == 0
        && PyObject_RichCompareBool(libxml, expected_libxml, Py_EQ) == 1;
    if (!same && !PyErr_Occurred())
        PyErr_Format(PyExc_ImportError, "built for lxml %s with libxml2 %s, running lxml %R with libxml2 %R",
                     LXML_VERSION_STRING, LIBXML_DOTTED_VERSION, version, libxml);
    Py_XDECREF(version);
    Py_XDECREF(libxml);
    Py_XDECREF(expected_libxml);
    return same ? 0 : -1;
}

static PyMethodDef methods[] = {
    {"compile_layout", compile_layout, METH_VARARGS,
     "compile_layout(layout, width, path, record_tag): {tag: position | layout | (kind, position)} and where the "
     "records are, compiled."},
    {"read_record", read_record, METH_VARARGS,
     "read_record(element, compiled_layout) -> the row of one element's known descendants."},
    {"read_records", read_records, METH_VARARGS,
     "read_records(root, compiled_layout) -> (the Texts of the records below the layout's path, steps found)."},
    {"gather", gather, METH_VARARGS,
     "gather(texts, order) -> (the Arrow buffers of the text columns in `order`, end to end, every page's values; "
     "{list column: its buffers}). Buffers: (length, null count, validity or None, int32 offsets, data bytes or, "
     "for a list, the members' buffers)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_records", "MWS record elements to rows, walking libxml2's tree in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__records(void)
{
    PyObject *module, *etree = PyImport_ImportModule("lxml.etree");
    if (etree == NULL)
        return NULL;
    if (check_versions(etree) < 0) {
        Py_DECREF(etree);
        return NULL;
    }
    element_type = (PyTypeObject *)PyObject_GetAttrString(etree, "_Element");
    Py_DECREF(etree);
    if (element_type == NULL)
        return NULL;
    if (PyType_Ready(&texts_type) < 0)
        return NULL;
    if (!PyType_Check(element_type)) {
        Py_CLEAR(element_type);
        PyErr_SetString(PyExc_ImportError, "lxml.etree._Element is not a type");
        return NULL;
    }
    if ((module = PyModule_Create(&module_definition)) != NULL && PyModule_AddType(module, &texts_type) < 0)
        Py_CLEAR(module);
    return module;
}
