/* Rows of element text from MWS record elements, read straight from the libxml2 tree lxml has built.
 *
 * The Python walk in records.py creates an lxml proxy object for every element it visits; this one reads the
 * same nodes in C and creates only the strings it returns. Its output is the Python walk's, value for value
 * (tests/test_records.py compares them). It reads lxml's element struct, so it refuses to load beside an lxml
 * or libxml2 other than the one whose headers it was compiled with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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
    Py_ssize_t path_size;
    Entry *path;  /* the steps from a document root to the parent of the records (tags only) */
    Entry record; /* the tag of the records (tag only) */
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

static int row_index(PyObject *value, Py_ssize_t width, Py_ssize_t *index)
{
    *index = PyLong_AsSsize_t(value);
    if (*index == -1 && PyErr_Occurred())
        return -1;
    if (*index < 0 || *index >= width) {
        PyErr_Format(PyExc_ValueError, "row position %zd outside a row of %zd", *index, width);
        return -1;
    }
    return 0;
}

static Table *compile_table(PyObject *mapping, Py_ssize_t width);

static int compile_entry(Entry *entry, PyObject *tag, PyObject *target, Py_ssize_t width)
{
    if (split_tag(tag, &entry->href, &entry->name) < 0)
        return -1;
    if (PyLong_Check(target)) {
        entry->kind = LEAF;
        return row_index(target, width, &entry->index);
    }
    if (PyDict_Check(target)) {
        entry->kind = GROUP;
        entry->group = compile_table(target, width);
        return entry->group == NULL ? -1 : 0;
    }
    if (PyTuple_Check(target) && PyTuple_GET_SIZE(target) == 2) {
        entry->kind = LIST;
        return row_index(PyTuple_GET_ITEM(target, 1), width, &entry->index);
    }
    PyErr_Format(PyExc_TypeError, "layout target for %R must be an int, a dict or a (kind, int) pair", tag);
    return -1;
}

static Table *compile_table(PyObject *mapping, Py_ssize_t width)
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
        if (compile_entry(&table->entries[i++], tag, target, width) < 0) {
            free_table(table);
            return NULL;
        }
    }
    return table;
}

static void free_layout_fields(Layout *layout)
{
    free_table(layout->root);
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
    if ((layout->root = compile_table(mapping, width)) == NULL || compile_path(layout, path, record_tag) < 0
        || (capsule = PyCapsule_New(layout, LAYOUT_CAPSULE, free_layout)) == NULL) {
        free_layout_fields(layout);
        return NULL;
    }
    return capsule;
}

/* ------------------------------------------------------------------------------------------- tree walk */

static int same_tag(const xmlNode *node, const char *href, const char *name)
{
    const xmlChar *node_href = node->ns != NULL ? node->ns->href : NULL;
    if (strcmp((const char *)node->name, name) != 0)
        return 0;
    if (href == NULL)
        return node_href == NULL;
    return node_href != NULL && strcmp((const char *)node_href, href) == 0;
}

static Entry *lookup(Table *table, const xmlNode *node)
{
    Py_ssize_t i = table->cursor;
    for (Py_ssize_t step = 0; step < table->size; step++, i++) {
        if (i == table->size)
            i = 0;
        if (same_tag(node, table->entries[i].href, table->entries[i].name)) {
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

/* What lxml's element.text returns: None without text nodes, '' when they are all empty, else their text. */
static PyObject *element_text(const xmlNode *element)
{
    const xmlNode *first = text_node_or_skip(element->children), *node;
    const xmlChar *text = NULL;
    Py_ssize_t count = 0;
    size_t total = 0;
    char *joined, *end;
    PyObject *result;
    for (node = first; node != NULL; node = text_node_or_skip(node->next)) {
        if (node->content != NULL && node->content[0] != '\0') {
            text = node->content;
            total += strlen((const char *)node->content);
        }
        count++;
    }
    if (text == NULL) {
        if (count > 0)
            return PyUnicode_FromStringAndSize("", 0);
        Py_RETURN_NONE;
    }
    if (count == 1)
        return PyUnicode_FromString((const char *)text);
    if ((joined = PyMem_Malloc(total + 1)) == NULL)
        return PyErr_NoMemory();
    end = joined;
    for (node = first; node != NULL; node = text_node_or_skip(node->next)) {
        if (node->content != NULL) {
            size_t length = strlen((const char *)node->content);
            memcpy(end, node->content, length);
            end += length;
        }
    }
    result = PyUnicode_DecodeUTF8(joined, end - joined, NULL);
    PyMem_Free(joined);
    return result;
}

static PyObject *children_texts(const xmlNode *element)
{
    PyObject *texts = PyList_New(0);
    if (texts == NULL)
        return NULL;
    for (const xmlNode *child = element->children; child != NULL; child = child->next) {
        PyObject *text;
        if (child->type != XML_ELEMENT_NODE)
            continue;
        if ((text = element_text(child)) == NULL || PyList_Append(texts, text) < 0) {
            Py_XDECREF(text);
            Py_DECREF(texts);
            return NULL;
        }
        Py_DECREF(text);
    }
    return texts;
}

static int fill(const xmlNode *element, Table *table, PyObject *row)
{
    for (const xmlNode *child = element->children; child != NULL; child = child->next) {
        Entry *entry;
        PyObject *value;
        if (child->type != XML_ELEMENT_NODE || (entry = lookup(table, child)) == NULL)
            continue;
        if (entry->kind == GROUP) {
            if (fill(child, entry->group, row) < 0)
                return -1;
            continue;
        }
        value = entry->kind == LEAF ? element_text(child) : children_texts(child);
        if (value == NULL)
            return -1;
        if (PyList_SetItem(row, entry->index, value) < 0)
            return -1;
    }
    return 0;
}

static PyObject *new_row(Py_ssize_t width)
{
    PyObject *row = PyList_New(width);
    if (row == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < width; i++)
        PyList_SET_ITEM(row, i, Py_NewRef(Py_None));
    return row;
}

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

static const xmlNode *first_child_tagged(const xmlNode *parent, const Entry *tag)
{
    for (const xmlNode *child = parent->children; child != NULL; child = child->next)
        if (child->type == XML_ELEMENT_NODE && same_tag(child, tag->href, tag->name))
            return child;
    return NULL;
}

static PyObject *read_record(PyObject *module, PyObject *args)
{
    PyObject *element, *capsule, *row;
    const xmlNode *node;
    Layout *layout;
    if (!PyArg_ParseTuple(args, "O!O:read_record", element_type, &element, &capsule))
        return NULL;
    if ((node = element_of(element)) == NULL || (layout = layout_of(capsule)) == NULL)
        return NULL;
    if ((row = new_row(layout->width)) != NULL && fill(node, layout->root, row) < 0)
        Py_CLEAR(row);
    return row;
}

static PyObject *read_records(PyObject *module, PyObject *args)
{
    PyObject *root, *capsule, *rows;
    const xmlNode *parent;
    Layout *layout;
    Py_ssize_t depth;
    if (!PyArg_ParseTuple(args, "O!O:read_records", element_type, &root, &capsule))
        return NULL;
    if ((parent = element_of(root)) == NULL || (layout = layout_of(capsule)) == NULL)
        return NULL;
    for (depth = 0; depth < layout->path_size; depth++)
        if ((parent = first_child_tagged(parent, &layout->path[depth])) == NULL)
            return Py_BuildValue("(Nn)", PyList_New(0), depth);
    rows = PyList_New(0);
    for (const xmlNode *child = parent->children; rows != NULL && child != NULL; child = child->next) {
        PyObject *row;
        if (child->type != XML_ELEMENT_NODE || !same_tag(child, layout->record.href, layout->record.name))
            continue;
        if ((row = new_row(layout->width)) == NULL || fill(child, layout->root, row) < 0 || PyList_Append(rows, row) < 0)
            Py_CLEAR(rows);
        Py_XDECREF(row);
    }
    if (rows == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", rows, depth);
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
     "read_records(root, compiled_layout) -> (a row per record below the layout's path, steps of the path found)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_records", "MWS record elements to rows, walking libxml2's tree in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__records(void)
{
    PyObject *etree = PyImport_ImportModule("lxml.etree");
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
    if (!PyType_Check(element_type)) {
        Py_CLEAR(element_type);
        PyErr_SetString(PyExc_ImportError, "lxml.etree._Element is not a type");
        return NULL;
    }
    return PyModule_Create(&module_definition);
}
