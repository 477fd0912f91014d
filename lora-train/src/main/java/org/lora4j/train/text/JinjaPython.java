package org.lora4j.train.text;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Python that Hugging Face chat templates use and Jinjava lacks. Jinja runs on Python, so a template
 * may call Python's string methods ({@code message.content.startswith('<tool_response>')},
 * {@code .split('</think>')[-1].lstrip('\n')}); Jinjava resolves method calls on Java's String, whose
 * {@code split} takes a regular expression and which has no {@code startswith}. This resolver answers
 * those calls with Python's meaning, before Jinjava's own resolver; anything else falls through to it.
 *
 * <p>The template's source is adapted where Jinjava differs from Jinja ({@link #adaptSource}): the
 * reversing slice {@code [::-1]}, which Jinjava does not parse, becomes the {@code |reverse} filter; each
 * argument of {@code namespace(name=value, ...)} is parenthesised (Jinjava reads
 * {@code n=messages|length - 1} as {@code (n=messages|length) - 1}); and {@code lstrip_blocks} is done
 * here, as Jinja defines it (spaces and tabs from the start of a line to a block or comment tag), because
 * Jinjava's also strips them after other text on the line ({@code {{ x }} {% endfor %}} lost its space).
 */
final class JinjaPython extends ELResolver {

    /** Jinja's lstrip_blocks: white space alone before a block or comment tag, unless the tag opens with '+'. */
    private static final Pattern LSTRIP_BLOCKS = Pattern.compile("(?m)^[ \\t]+(?=\\{[%#](?!\\+))");

    private static final Pattern NAMESPACE_CALL = Pattern.compile("\\bnamespace\\(");
    private static final Pattern NAMED_ARGUMENT = Pattern.compile("(?s)(\\s*[A-Za-z_][A-Za-z_0-9]*\\s*=)(?!=)(.*)");

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof String s) || method == null) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object result;
        switch (method + "/" + p.length) {
            case "startswith/1" -> result = s.startsWith(String.valueOf(p[0]));
            case "endswith/1" -> result = s.endsWith(String.valueOf(p[0]));
            case "strip/0" -> result = s.strip();
            case "lstrip/0" -> result = s.stripLeading();
            case "rstrip/0" -> result = s.stripTrailing();
            case "strip/1" -> result = rstrip(lstrip(s, String.valueOf(p[0])), String.valueOf(p[0]));
            case "lstrip/1" -> result = lstrip(s, String.valueOf(p[0]));
            case "rstrip/1" -> result = rstrip(s, String.valueOf(p[0]));
            case "split/1" -> result = split(s, String.valueOf(p[0]));
            case "lower/0" -> result = s.toLowerCase(java.util.Locale.ROOT);
            case "upper/0" -> result = s.toUpperCase(java.util.Locale.ROOT);
            case "replace/2" -> result = s.replace(String.valueOf(p[0]), String.valueOf(p[1]));
            default -> {
                return null;
            }
        }
        context.setPropertyResolved(true);
        return result;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && chars.indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int i = s.length();
        while (i > 0 && chars.indexOf(s.charAt(i - 1)) >= 0) {
            i--;
        }
        return s.substring(0, i);
    }

    /** Python's {@code str.split(sep)}: a literal separator, empty pieces kept. */
    private static List<String> split(String s, String separator) {
        if (separator.isEmpty()) {
            throw new IllegalArgumentException("split: empty separator");
        }
        List<String> pieces = new ArrayList<>();
        int from = 0;
        for (int at = s.indexOf(separator); at >= 0; at = s.indexOf(separator, from)) {
            pieces.add(s.substring(from, at));
            from = at + separator.length();
        }
        pieces.add(s.substring(from));
        return pieces;
    }

    /** See the class comment. */
    static String adaptSource(String source) {
        String adapted = LSTRIP_BLOCKS.matcher(source.replace("[::-1]", "|reverse")).replaceAll("");
        StringBuilder out = new StringBuilder(adapted.length() + 16);
        Matcher call = NAMESPACE_CALL.matcher(adapted);
        int copied = 0;
        while (call.find(copied)) {
            int open = call.end();
            int close = matchingParenthesis(adapted, open);
            if (close < 0) {
                break;
            }
            out.append(adapted, copied, open);
            List<String> arguments = topLevelArguments(adapted.substring(open, close));
            for (int i = 0; i < arguments.size(); i++) {
                Matcher named = NAMED_ARGUMENT.matcher(arguments.get(i));
                out.append(i == 0 ? "" : ",");
                out.append(named.matches() ? named.group(1) + "(" + named.group(2) + ")" : arguments.get(i));
            }
            out.append(')');
            copied = close + 1;
        }
        return out.append(adapted.substring(copied)).toString();
    }

    /** The index of the ')' closing the '(' just before {@code from}, skipping quoted strings; -1 if none. */
    private static int matchingParenthesis(String s, int from) {
        int depth = 1;
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                if (--depth == 0) {
                    return c == ')' ? i : -1;
                }
            }
        }
        return -1;
    }

    private static List<String> topLevelArguments(String s) {
        List<String> arguments = new ArrayList<>();
        int depth = 0;
        char quote = 0;
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                arguments.add(s.substring(start, i));
                start = i + 1;
            }
        }
        if (start < s.length() || !arguments.isEmpty()) {
            arguments.add(s.substring(start));
        }
        return arguments;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return false;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }
}
