package org.lora4j.examples;

import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;

import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What every command shares on top of picocli: the checks picocli's types cannot say (a count of at
 * least one, a value that must not be blank, an option a command needs), number converters whose
 * errors say what was expected, and picocli's parse errors turned into the one line the lora4j
 * command line prints (the option first, then what is wrong with it).
 */
final class Cli {
    private Cli() {
    }

    /**
     * Options a command needs are checked here rather than with picocli's {@code required}: a value
     * from a --config file counts as given, and the message stays the command line's own.
     */
    static <T> T required(T value, String option) {
        if (value == null) {
            throw new IllegalArgumentException("missing required option " + option);
        }
        return value;
    }

    static int atLeast(String option, int value, int min) {
        if (value < min) {
            throw new IllegalArgumentException(option + " must be >= " + min + ", got " + value);
        }
        return value;
    }

    /** A value that must not be empty when given ({@code --layers ""} is a mistake, not "all layers"). */
    static String nonBlank(String option, String value, String example) {
        if (value != null && value.isBlank()) {
            throw new IllegalArgumentException(option + " is empty; give " + example + ", or leave the option out");
        }
        return value;
    }

    /** Integer and number converters whose message, prefixed with the option, reads as a sentence. */
    static void registerConverters(CommandLine cl) {
        CommandLine.ITypeConverter<Integer> ints = s -> {
            empty(s);
            try {
                return Integer.valueOf(s.strip());
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("must be an integer, got '" + s + "'");
            }
        };
        CommandLine.ITypeConverter<Long> longs = s -> {
            empty(s);
            try {
                return Long.valueOf(s.strip());
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("must be an integer, got '" + s + "'");
            }
        };
        CommandLine.ITypeConverter<Double> doubles = s -> {
            empty(s);
            try {
                return Double.valueOf(s.strip());
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("must be a number, got '" + s + "'");
            }
        };
        cl.registerConverter(Integer.class, ints);
        cl.registerConverter(Integer.TYPE, ints);
        cl.registerConverter(Long.class, longs);
        cl.registerConverter(Long.TYPE, longs);
        cl.registerConverter(Double.class, doubles);
        cl.registerConverter(Double.TYPE, doubles);
    }

    /** {@code --layers ""} is a mistake, not "all layers": said as such rather than as a bad number. */
    private static void empty(String s) {
        if (s.isBlank()) {
            throw new CommandLine.TypeConversionException("got an empty value; give one, or leave the option out");
        }
    }

    private static final Pattern EXPECTED = Pattern.compile("Expected parameter for option '([^']+)' but found '([^']+)'.*",
            Pattern.DOTALL);
    private static final Pattern UNKNOWN = Pattern.compile("Unknown option: '([^']+)'(.*)", Pattern.DOTALL);
    private static final Pattern MISSING = Pattern.compile("Missing required parameter for option '([^']+)'.*",
            Pattern.DOTALL);

    /** picocli's parse error as the lora4j command line says it: the option first. */
    static String message(ParameterException e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        if (e instanceof CommandLine.UnmatchedArgumentException u) {
            Matcher unknown = UNKNOWN.matcher(m);
            if (unknown.matches()) {
                // "--out --bogus": picocli names both; the unknown option first, then the value it left missing.
                Matcher x = EXPECTED.matcher(unknown.group(2).replaceFirst("^; ", ""));
                return "unknown option " + unknown.group(1) + (x.matches() ? "; " + x.group(1) + " needs a value" : "");
            }
            List<String> unmatched = u.getUnmatched();
            for (String a : unmatched) {
                if (a.startsWith("-")) {
                    String name = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
                    List<String> near = u.getSuggestions();   // the closest first
                    return "unknown option " + name + (near.isEmpty() ? "" : " (did you mean " + near.get(0) + "?)");
                }
            }
            return "unexpected argument" + (unmatched.size() > 1 ? "s " : " ") + String.join(" ", quoted(unmatched))
                    + " (options start with --)";
        }
        if (e instanceof CommandLine.OverwrittenOptionException o) {
            return name(o.getOverwritten()) + " is given twice; give it once";
        }
        Matcher x = EXPECTED.matcher(m);
        if (x.matches()) {
            return x.group(1) + " needs a value, got the option " + x.group(2);
        }
        Matcher miss = MISSING.matcher(m);
        if (miss.matches()) {
            return miss.group(1) + " needs a value";
        }
        ArgSpec arg = e.getArgSpec();
        if (arg != null && arg.type() != null && arg.type().isEnum() && e.getValue() != null) {
            StringBuilder names = new StringBuilder();
            for (Object c : arg.type().getEnumConstants()) {
                names.append(names.length() == 0 ? "" : ", ").append(((Enum<?>) c).name().toLowerCase(Locale.ROOT));
            }
            return name(arg) + " must be one of " + names + ", got '" + e.getValue() + "'";
        }
        if (arg != null && e.getCause() instanceof CommandLine.TypeConversionException t) {
            return name(arg) + " " + t.getMessage();
        }
        return m;
    }

    private static String name(ArgSpec arg) {
        return arg instanceof OptionSpec o ? o.longestName() : arg.paramLabel();
    }

    private static List<String> quoted(List<String> args) {
        return args.stream().map(a -> "'" + a + "'").toList();
    }
}
