package org.lora4j.examples;

import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.annotations.XYTextAnnotation;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.CategoryLabelPositions;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.PaintScale;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.CategoryItemRendererState;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.DeviationRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.PaintScaleLegend;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.axis.AxisLocation;
import org.jfree.data.category.CategoryDataset;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;
import org.lora4j.core.AtomicFiles;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Paint;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.geom.Rectangle2D;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * PNG plots for the research instruments, drawn with JFreeChart. Every plot writes two files:
 * {@code <name>.png} and, next to it, {@code <name>.csv} holding exactly the data drawn, so a plot
 * can be redrawn or checked without the picture. Both are written atomically (a reader never sees
 * half a file). Titles and axis labels are the caller's: every plot must name its run in the title
 * and give units in the axis labels, so blank ones are refused.
 *
 * <p>The CSV is long format, one row per point, with a header: {@code series,x,y,lower,upper} for
 * {@link #lines} (a vertical marker is a row of series {@code marker} with only x), {@code
 * series,x,y,step} for {@link #path} and {@code series,category,y,lower,upper} for {@link #bars};
 * an absent value (no interval, a missing y) is an empty field. Numbers are written in Java's
 * shortest round-tripping form, so parsing the CSV gives back the exact doubles.
 *
 * <p>Rendering needs no display: this class sets {@code java.awt.headless=true} before it loads AWT
 * (a caller that loaded AWT earlier with a display keeps its own setting).
 */
public final class Plots {
    static {
        // Before any AWT class loads; a server or CI machine has no display, and AWT would fail to open one.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** Width of every PNG in pixels. */
    public static final int WIDTH = 1000;
    /** Height of every PNG in pixels. */
    public static final int HEIGHT = 600;

    /** Colours that stay distinguishable for colour-blind readers (Okabe and Ito's palette). */
    private static final Color[] PALETTE = {
            new Color(0, 114, 178), new Color(213, 94, 0), new Color(0, 158, 115), new Color(204, 121, 167),
            new Color(86, 180, 233), new Color(230, 159, 0), new Color(0, 0, 0), new Color(240, 228, 66)};

    private Plots() {
    }

    /**
     * One named curve: points (x[i], y[i]) and, optionally, an interval [lower[i], upper[i]] around
     * each (a confidence interval; both null for none). x must be finite; y, lower and upper may be
     * NaN for a missing value (a gap in the line), never infinite. The arrays are copied.
     */
    public record Series(String name, double[] x, double[] y, double[] lower, double[] upper) {
        public Series {
            if (name == null || name.isBlank()) {
                throw new IllegalArgumentException("series name must not be blank, got '" + name + "'");
            }
            if (x == null || y == null) {
                throw new IllegalArgumentException("series '" + name + "': x and y must not be null");
            }
            if (x.length == 0) {
                throw new IllegalArgumentException("series '" + name + "' is empty: no points");
            }
            if (y.length != x.length) {
                throw new IllegalArgumentException("series '" + name + "': x has " + x.length + " points but y has " + y.length);
            }
            if ((lower == null) != (upper == null)) {
                throw new IllegalArgumentException("series '" + name + "': lower and upper must both be given or both be null");
            }
            if (lower != null && (lower.length != x.length || upper.length != x.length)) {
                throw new IllegalArgumentException("series '" + name + "': x has " + x.length + " points but lower has "
                        + lower.length + " and upper " + upper.length);
            }
            for (int i = 0; i < x.length; i++) {
                if (!Double.isFinite(x[i])) {
                    throw new IllegalArgumentException("series '" + name + "': x[" + i + "] is not finite: " + x[i]);
                }
                requireNotInfinite(name, "y", y, i);
                if (lower != null) {
                    requireNotInfinite(name, "lower", lower, i);
                    requireNotInfinite(name, "upper", upper, i);
                    if (lower[i] > upper[i]) {
                        throw new IllegalArgumentException("series '" + name + "': lower[" + i + "] = " + lower[i]
                                + " is above upper[" + i + "] = " + upper[i]);
                    }
                }
            }
            x = x.clone();
            y = y.clone();
            lower = lower == null ? null : lower.clone();
            upper = upper == null ? null : upper.clone();
        }

        /** Whether this series carries an interval band. */
        public boolean hasInterval() {
            return lower != null;
        }

        /** Number of points. */
        public int size() {
            return x.length;
        }

        private static void requireNotInfinite(String name, String what, double[] v, int i) {
            if (Double.isInfinite(v[i])) {
                throw new IllegalArgumentException("series '" + name + "': " + what + "[" + i + "] is infinite");
            }
        }
    }

    /** A series without an interval. */
    public static Series series(String name, double[] x, double[] y) {
        return new Series(name, x, y, null, null);
    }

    /**
     * Line plot of several series against a shared x axis; a series with an interval is drawn with
     * a shaded band. {@code verticalMarkers} (may be null) are drawn as labelled dashed vertical
     * lines, e.g. a transition step.
     */
    public static void lines(Path png, String title, String xLabel, String yLabel, List<Series> series,
                             double[] verticalMarkers) {
        requireLabels(png, title, xLabel, yLabel);
        requireSeries(series, "series");
        double[] markers = verticalMarkers == null ? new double[0] : verticalMarkers.clone();
        for (int i = 0; i < markers.length; i++) {
            if (!Double.isFinite(markers[i])) {
                throw new IllegalArgumentException("vertical marker " + i + " is not finite: " + markers[i]);
            }
        }

        // Band series and plain series go into two datasets with two renderers; colours are assigned
        // by the series' position in the caller's list so the legend order matches it.
        YIntervalSeriesCollection banded = new YIntervalSeriesCollection();
        XYSeriesCollection plain = new XYSeriesCollection();
        DeviationRenderer bandRenderer = new DeviationRenderer(true, false);
        XYLineAndShapeRenderer lineRenderer = new XYLineAndShapeRenderer(true, false);
        for (int s = 0; s < series.size(); s++) {
            Series se = series.get(s);
            Color colour = PALETTE[s % PALETTE.length];
            boolean onePoint = se.size() == 1;   // a line of one point is invisible: show the point
            if (se.hasInterval()) {
                YIntervalSeries ys = new YIntervalSeries(se.name(), false, true);
                for (int i = 0; i < se.size(); i++) {
                    // The band is one polygon, which a missing value would break: such points are left out.
                    if (!Double.isNaN(se.y()[i]) && !Double.isNaN(se.lower()[i]) && !Double.isNaN(se.upper()[i])) {
                        ys.add(se.x()[i], se.y()[i], se.lower()[i], se.upper()[i]);
                    }
                }
                int k = banded.getSeriesCount();
                banded.addSeries(ys);
                bandRenderer.setSeriesPaint(k, colour);
                bandRenderer.setSeriesFillPaint(k, colour);
                bandRenderer.setSeriesStroke(k, new BasicStroke(2f));
                bandRenderer.setSeriesShapesVisible(k, onePoint);
            } else {
                XYSeries xs = new XYSeries(se.name(), false, true);
                for (int i = 0; i < se.size(); i++) {
                    xs.add(se.x()[i], Double.isNaN(se.y()[i]) ? null : (Number) se.y()[i]);
                }
                int k = plain.getSeriesCount();
                plain.addSeries(xs);
                lineRenderer.setSeriesPaint(k, colour);
                lineRenderer.setSeriesStroke(k, new BasicStroke(2f));
                lineRenderer.setSeriesShapesVisible(k, onePoint);
            }
        }
        bandRenderer.setAlpha(0.2f);

        XYPlot plot = new XYPlot();
        plot.setDomainAxis(numberAxis(xLabel));
        plot.setRangeAxis(numberAxis(yLabel));
        int index = 0;
        if (plain.getSeriesCount() > 0) {
            plot.setDataset(index, plain);
            plot.setRenderer(index, lineRenderer);
            index++;
        }
        if (banded.getSeriesCount() > 0) {
            plot.setDataset(index, banded);
            plot.setRenderer(index, bandRenderer);
        }
        for (double m : markers) {
            ValueMarker marker = new ValueMarker(m, Color.DARK_GRAY,
                    new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{6f, 4f}, 0f));
            marker.setLabel(format(m));
            marker.setLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            marker.setLabelAnchor(RectangleAnchor.TOP_RIGHT);
            marker.setLabelTextAnchor(TextAnchor.TOP_LEFT);
            marker.setLabelOffset(new RectangleInsets(4, 4, 4, 4));
            plot.addDomainMarker(marker);
        }
        style(plot);
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);

        boolean anyInterval = series.stream().anyMatch(Series::hasInterval);
        StringBuilder csv = new StringBuilder(anyInterval ? "series,x,y,lower,upper\n" : "series,x,y\n");
        for (Series se : series) {
            for (int i = 0; i < se.size(); i++) {
                csv.append(csvField(se.name())).append(',').append(number(se.x()[i])).append(',').append(number(se.y()[i]));
                if (anyInterval) {
                    csv.append(',').append(se.hasInterval() ? number(se.lower()[i]) : "")
                            .append(',').append(se.hasInterval() ? number(se.upper()[i]) : "");
                }
                csv.append('\n');
            }
        }
        for (double m : markers) {
            csv.append("marker,").append(number(m)).append(anyInterval ? ",,,\n" : ",\n");
        }
        write(png, chart, csv.toString());
    }

    /**
     * A path through the plane: points (x[i], y[i]) joined in the given order, each point and the
     * segment leaving it coloured by {@code steps[i]}, with a colour scale for the step and the first
     * and last points labelled. Used for a PCA trajectory (PC1 against PC2). x and y must be finite.
     */
    public static void path(Path png, String title, String xLabel, String yLabel,
                            double[] x, double[] y, int[] steps) {
        requireLabels(png, title, xLabel, yLabel);
        if (x == null || y == null || steps == null) {
            throw new IllegalArgumentException("path: x, y and steps must not be null");
        }
        if (x.length == 0) {
            throw new IllegalArgumentException("path is empty: no points");
        }
        if (y.length != x.length || steps.length != x.length) {
            throw new IllegalArgumentException("path: x has " + x.length + " points, y " + y.length + ", steps " + steps.length);
        }
        for (int i = 0; i < x.length; i++) {
            if (!Double.isFinite(x[i]) || !Double.isFinite(y[i])) {
                throw new IllegalArgumentException("path: point " + i + " is not finite: (" + x[i] + ", " + y[i] + ")");
            }
        }
        int minStep = Integer.MAX_VALUE;
        int maxStep = Integer.MIN_VALUE;
        for (int s : steps) {
            minStep = Math.min(minStep, s);
            maxStep = Math.max(maxStep, s);
        }
        // A scale needs a non-empty range; one step (or all equal) gets a range of one.
        StepScale scale = new StepScale(minStep, maxStep > minStep ? maxStep : minStep + 1);

        XYSeries xs = new XYSeries("path", false, true);
        for (int i = 0; i < x.length; i++) {
            xs.add(x[i], y[i]);
        }
        int[] stepsCopy = steps.clone();
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true) {
            @Override
            public Paint getItemPaint(int row, int column) {
                return scale.getPaint(stepsCopy[column]);
            }
        };
        renderer.setSeriesShape(0, new Ellipse2D.Double(-4, -4, 8, 8));
        renderer.setSeriesStroke(0, new BasicStroke(1.5f));
        NumberAxis xAxis = numberAxis(xLabel);
        NumberAxis yAxis = numberAxis(yLabel);
        // Room around the points for the first and last step's labels.
        xAxis.setAutoRangeStickyZero(false);
        yAxis.setAutoRangeStickyZero(false);
        xAxis.setLowerMargin(0.05);
        xAxis.setUpperMargin(0.12);
        yAxis.setLowerMargin(0.05);
        yAxis.setUpperMargin(0.05);
        XYPlot plot = new XYPlot(new XYSeriesCollection(xs), xAxis, yAxis, renderer);
        XYTextAnnotation first = new XYTextAnnotation("  step " + steps[0], x[0], y[0]);
        first.setTextAnchor(TextAnchor.CENTER_LEFT);
        plot.addAnnotation(first);
        if (x.length > 1) {
            XYTextAnnotation last = new XYTextAnnotation("  step " + steps[x.length - 1], x[x.length - 1], y[x.length - 1]);
            last.setTextAnchor(TextAnchor.CENTER_LEFT);
            plot.addAnnotation(last);
        }
        style(plot);
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, false);
        NumberAxis stepAxis = new NumberAxis("step");
        stepAxis.setRange(scale.getLowerBound(), scale.getUpperBound());
        stepAxis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        PaintScaleLegend legend = new PaintScaleLegend(scale, stepAxis);
        legend.setPosition(RectangleEdge.RIGHT);
        legend.setAxisLocation(AxisLocation.TOP_OR_RIGHT);
        legend.setMargin(new RectangleInsets(10, 10, 10, 10));
        legend.setStripWidth(15);
        legend.setBackgroundPaint(Color.WHITE);
        chart.addSubtitle(legend);

        StringBuilder csv = new StringBuilder("series,x,y,step\n");
        for (int i = 0; i < x.length; i++) {
            csv.append("path,").append(number(x[i])).append(',').append(number(y[i])).append(',').append(steps[i]).append('\n');
        }
        write(png, chart, csv.toString());
    }

    /**
     * Grouped bars: one group per category, one bar per series in each group, the bar's height the
     * series' y at the category's index (each series' y has one value per category; its x is not
     * drawn). A series with an interval gets error bars from lower to upper. NaN y leaves the bar out.
     */
    public static void bars(Path png, String title, String xLabel, String yLabel,
                            List<String> categories, List<Series> values) {
        requireLabels(png, title, xLabel, yLabel);
        if (categories == null || categories.isEmpty()) {
            throw new IllegalArgumentException("bars: no categories");
        }
        Set<String> seen = new HashSet<>();
        for (String c : categories) {
            if (c == null) {
                throw new IllegalArgumentException("bars: a category is null");
            }
            if (!seen.add(c)) {
                throw new IllegalArgumentException("bars: category '" + c + "' appears twice");
            }
        }
        requireSeries(values, "values");
        for (Series se : values) {
            if (se.size() != categories.size()) {
                throw new IllegalArgumentException("bars: series '" + se.name() + "' has " + se.size()
                        + " values but there are " + categories.size() + " categories");
            }
        }
        DefaultCategoryDataset dataset = new DefaultCategoryDataset();
        for (Series se : values) {
            for (int c = 0; c < categories.size(); c++) {
                dataset.addValue(Double.isNaN(se.y()[c]) ? null : (Number) se.y()[c], se.name(), categories.get(c));
            }
        }
        ErrorBarRenderer renderer = new ErrorBarRenderer(values);
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setShadowVisible(false);
        renderer.setItemMargin(0.05);
        for (int s = 0; s < values.size(); s++) {
            renderer.setSeriesPaint(s, PALETTE[s % PALETTE.length]);
        }
        CategoryAxis domain = new CategoryAxis(xLabel);
        if (categories.size() > 12) {
            domain.setCategoryLabelPositions(CategoryLabelPositions.UP_45);
        }
        NumberAxis range = numberAxis(yLabel);
        // Error bars may reach beyond the bars; the axis must include them.
        double lo = 0;
        double hi = 0;
        for (Series se : values) {
            for (int c = 0; c < se.size(); c++) {
                lo = minIgnoringNaN(lo, se.y()[c], se.hasInterval() ? se.lower()[c] : Double.NaN);
                hi = maxIgnoringNaN(hi, se.y()[c], se.hasInterval() ? se.upper()[c] : Double.NaN);
            }
        }
        if (hi > lo) {
            double pad = 0.05 * (hi - lo);
            range.setRange(lo < 0 ? lo - pad : lo, hi > 0 ? hi + pad : hi);
        }
        CategoryPlot plot = new CategoryPlot(dataset, domain, range, renderer);
        plot.setOrientation(PlotOrientation.VERTICAL);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);

        boolean anyInterval = values.stream().anyMatch(Series::hasInterval);
        StringBuilder csv = new StringBuilder(anyInterval ? "series,category,y,lower,upper\n" : "series,category,y\n");
        for (Series se : values) {
            for (int c = 0; c < categories.size(); c++) {
                csv.append(csvField(se.name())).append(',').append(csvField(categories.get(c))).append(',').append(number(se.y()[c]));
                if (anyInterval) {
                    csv.append(',').append(se.hasInterval() ? number(se.lower()[c]) : "")
                            .append(',').append(se.hasInterval() ? number(se.upper()[c]) : "");
                }
                csv.append('\n');
            }
        }
        write(png, chart, csv.toString());
    }

    /** The CSV written next to {@code png}: same directory and name, extension {@code .csv}. */
    public static Path csvPath(Path png) {
        String name = png.getFileName().toString();
        String stem = name.toLowerCase(Locale.ROOT).endsWith(".png") ? name.substring(0, name.length() - 4) : name;
        return png.resolveSibling(stem + ".csv");
    }

    // ---------------------------------------------------------------------------------------------

    /** Bars with a vertical error bar from lower to upper for the series that have intervals. */
    private static final class ErrorBarRenderer extends BarRenderer {
        private final transient List<Series> values;

        ErrorBarRenderer(List<Series> values) {
            this.values = values;
        }

        @Override
        public void drawItem(Graphics2D g2, CategoryItemRendererState state, Rectangle2D dataArea, CategoryPlot plot,
                             CategoryAxis domainAxis, ValueAxis rangeAxis, CategoryDataset dataset, int row, int column,
                             int pass) {
            super.drawItem(g2, state, dataArea, plot, domainAxis, rangeAxis, dataset, row, column, pass);
            Series se = values.get(row);
            if (pass != 0 || !se.hasInterval() || Double.isNaN(se.lower()[column]) || Double.isNaN(se.upper()[column])) {
                return;
            }
            double centre = domainAxis.getCategorySeriesMiddle(column, dataset.getColumnCount(), row,
                    dataset.getRowCount(), getItemMargin(), dataArea, plot.getDomainAxisEdge());
            double top = rangeAxis.valueToJava2D(se.upper()[column], dataArea, plot.getRangeAxisEdge());
            double bottom = rangeAxis.valueToJava2D(se.lower()[column], dataArea, plot.getRangeAxisEdge());
            double half = Math.max(2, state.getBarWidth() / 4);
            g2.setPaint(Color.BLACK);
            g2.setStroke(new BasicStroke(1.2f));
            g2.draw(new Line2D.Double(centre, top, centre, bottom));
            g2.draw(new Line2D.Double(centre - half, top, centre + half, top));
            g2.draw(new Line2D.Double(centre - half, bottom, centre + half, bottom));
        }
    }

    /** Colour for a step: dark blue (first) through teal and green to yellow (last), like viridis. */
    private static final class StepScale implements PaintScale {
        private static final Color[] STOPS = {new Color(68, 1, 84), new Color(59, 82, 139), new Color(33, 145, 140),
                new Color(94, 201, 98), new Color(253, 231, 37)};
        private final double lower;
        private final double upper;

        StepScale(double lower, double upper) {
            this.lower = lower;
            this.upper = upper;
        }

        @Override
        public double getLowerBound() {
            return lower;
        }

        @Override
        public double getUpperBound() {
            return upper;
        }

        @Override
        public Paint getPaint(double value) {
            double t = Math.max(0, Math.min(1, (value - lower) / (upper - lower))) * (STOPS.length - 1);
            int i = Math.min((int) t, STOPS.length - 2);
            double f = t - i;
            Color a = STOPS[i];
            Color b = STOPS[i + 1];
            return new Color((int) Math.round(a.getRed() + f * (b.getRed() - a.getRed())),
                    (int) Math.round(a.getGreen() + f * (b.getGreen() - a.getGreen())),
                    (int) Math.round(a.getBlue() + f * (b.getBlue() - a.getBlue())));
        }
    }

    private static void requireLabels(Path png, String title, String xLabel, String yLabel) {
        if (png == null) {
            throw new IllegalArgumentException("plot path must not be null");
        }
        if (title == null || title.isBlank()) {
            throw new IllegalArgumentException("plot " + png + ": the title must name the run, got a blank title");
        }
        if (xLabel == null || xLabel.isBlank() || yLabel == null || yLabel.isBlank()) {
            throw new IllegalArgumentException("plot " + png + ": both axes need a label with units, got x '"
                    + xLabel + "' and y '" + yLabel + "'");
        }
    }

    private static void requireSeries(List<Series> series, String what) {
        if (series == null || series.isEmpty()) {
            throw new IllegalArgumentException("plot has no " + what + ": nothing to draw");
        }
        Set<String> names = new HashSet<>();
        for (Series se : series) {
            if (se == null) {
                throw new IllegalArgumentException("plot " + what + " contains null");
            }
            // The legend and the CSV tell series apart by name.
            if (!names.add(se.name())) {
                throw new IllegalArgumentException("two series are named '" + se.name() + "'");
            }
        }
    }

    private static NumberAxis numberAxis(String label) {
        NumberAxis axis = new NumberAxis(label);
        axis.setAutoRangeIncludesZero(false);
        return axis;
    }

    private static void style(XYPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    }

    private static double minIgnoringNaN(double acc, double a, double b) {
        if (!Double.isNaN(a)) {
            acc = Math.min(acc, a);
        }
        return Double.isNaN(b) ? acc : Math.min(acc, b);
    }

    private static double maxIgnoringNaN(double acc, double a, double b) {
        if (!Double.isNaN(a)) {
            acc = Math.max(acc, a);
        }
        return Double.isNaN(b) ? acc : Math.max(acc, b);
    }

    private static void write(Path png, JFreeChart chart, String csv) {
        chart.setBackgroundPaint(Color.WHITE);
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            ChartUtils.writeChartAsPNG(bytes, chart, WIDTH, HEIGHT);
            Path parent = png.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            AtomicFiles.write(png, bytes.toByteArray());
            AtomicFiles.writeString(csvPath(png), csv);
        } catch (IOException e) {
            throw new UncheckedIOException("could not write plot " + png + ": " + e.getMessage(), e);
        }
    }

    /** A number as Java's shortest round-tripping decimal; NaN (missing) as an empty field. */
    private static String number(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }

    /** A marker label: integers without a decimal point (steps), other values to 4 significant digits. */
    private static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return String.format(Locale.ROOT, "%.4g", v);
    }

    /** RFC 4180 quoting for a text field that holds a comma, quote or line break. */
    static String csvField(String s) {
        if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0) {
            return s;
        }
        return '"' + s.replace("\"", "\"\"") + '"';
    }
}
