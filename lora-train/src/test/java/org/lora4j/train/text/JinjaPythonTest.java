package org.lora4j.train.text;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Python-isms of Hugging Face chat templates, with Python's meaning (the expected values are Python's). */
class JinjaPythonTest {

    private static String render(String template, Message... messages) {
        return ChatTemplate.jinja(template, "test", Map.of()).render(List.of(messages), false);
    }

    @Test
    void stringMethodsMeanWhatTheyMeanInPython() {
        Message m = Message.user("\n\n<a>.b.c\n");
        assertEquals("True False", render("{{ messages[0].content.strip().startswith('<a>') }} "
                + "{{ messages[0].content.endswith('c') }}", m).replace("true", "True").replace("false", "False"));
        // a literal separator, not a regular expression; empty pieces kept
        assertEquals("c\n|3", render("{{ messages[0].content.split('.')[-1] }}|{{ messages[0].content.split('.')|length }}", m));
        assertEquals("[<a>.b.c]", render("[{{ messages[0].content.strip('\\n') }}]", m));
        assertEquals("[<a>.b.c\n]", render("[{{ messages[0].content.lstrip('\\n') }}]", m));
        assertEquals("[\n\n<a>.b.c]", render("[{{ messages[0].content.rstrip() }}]", m));
        assertEquals("AB|ab|a-b", render("{{ 'aB'.upper() }}|{{ 'aB'.lower() }}|{{ 'a.b'.replace('.', '-') }}"));
    }

    @Test
    void reversedSliceNamespaceAndDictIteration() {
        Message[] chat = {Message.user("u"), Message.assistant("a")};
        assertEquals("assistant user ", render("{% for m in messages[::-1] %}{{ m.role }} {% endfor %}", chat));
        // Jinjava alone reads n=messages|length - 1 as (n=messages|length) - 1
        assertEquals("1 false 2", render("{% set ns = namespace(n=messages|length - 1, seen=false) %}{{ ns.n }} {{ ns.seen }}"
                + "{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %} {{ ns.n - 1 }}", chat));
        // iterating a dict gives its keys, as in Python
        assertEquals("role,content,", render("{% for k in messages[0] %}{{ k }},{% endfor %}", chat));
        assertEquals("yes", render("{% if 'role' in messages[0] and 'tool_calls' not in messages[0] %}yes{% endif %}", chat));
    }

    @Test
    void adaptSourceOnlyTouchesWhatJinjavaCannotParse() {
        assertEquals("{% set ns = namespace(a=(1), b=(x|length - 1)) %}{% for m in m|reverse %}",
                JinjaPython.adaptSource("{% set ns = namespace(a=1, b=x|length - 1) %}{% for m in m[::-1] %}"));
        assertEquals("{{ f(a=1) }} {{ namespace() }} {{ namespace(x=(g(1, 2)), y=('a,b')) }}",
                JinjaPython.adaptSource("{{ f(a=1) }} {{ namespace() }} {{ namespace(x=g(1, 2), y='a,b') }}"));
    }
}
