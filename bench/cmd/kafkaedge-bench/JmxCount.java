// JmxCount is kafkaedge-bench's reader of the brokers' JMX counters (see
// jmx.go): it connects once to each JMX address given as an argument
// (host:port of the RMI registry and server, no authentication), prints
// "ready", then answers each line "<attribute> <object-name pattern>" read
// on stdin with one line: for each broker, in the order given, the sum of
// that attribute over the MBeans matching the pattern (0 if none matches
// yet), or error:<message>. It runs as a single source file (java
// JmxCount.java ...), needs only the JDK, and exits when stdin closes.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class JmxCount {
    public static void main(String[] args) throws Exception {
        List<MBeanServerConnection> conns = new ArrayList<>();
        for (String addr : args) {
            JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + addr + "/jmxrmi");
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                try {
                    JMXConnector c = JMXConnectorFactory.connect(url, null);
                    conns.add(c.getMBeanServerConnection());
                    break;
                } catch (Exception e) {
                    if (System.currentTimeMillis() > deadline) {
                        System.out.println("error:connect " + addr + ": " + e);
                        System.exit(1);
                    }
                    Thread.sleep(500);
                }
            }
        }
        System.out.println("ready");
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            int sp = line.indexOf(' ');
            StringBuilder out = new StringBuilder();
            for (MBeanServerConnection mc : conns) {
                if (out.length() > 0) {
                    out.append(' ');
                }
                try {
                    String attr = line.substring(0, sp);
                    ObjectName pattern = new ObjectName(line.substring(sp + 1));
                    long sum = 0;
                    for (ObjectName n : mc.queryNames(pattern, null)) {
                        sum += ((Number) mc.getAttribute(n, attr)).longValue();
                    }
                    out.append(sum);
                } catch (Exception e) {
                    out.append("error:").append(String.valueOf(e).replace(' ', '_'));
                }
            }
            System.out.println(out);
            System.out.flush();
        }
    }
}
