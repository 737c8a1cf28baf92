import sys, time
from confluent_kafka import Producer
bs = sys.argv[1]; topic = sys.argv[2]; n = int(sys.argv[3])
acked = []; errs = {}
def cb(err, msg):
    if err: errs[err.name()] = errs.get(err.name(), 0) + 1
    else: acked.append(int(msg.value()[:8]))
p = Producer({'bootstrap.servers': bs, 'enable.idempotence': True, 'message.timeout.ms': 5000, 'linger.ms': 5})
for i in range(n):
    v = b'%08d' % i + b'x' * 1000
    while True:
        try: p.produce(topic, v, headers=[('mq.delay.ms', b'2000')], callback=cb); break
        except BufferError: p.poll(0.1)
    p.poll(0)
p.flush(20)
print('acked', len(acked), 'errors', errs)
open('/tmp/exp/acked.txt','w').write('\n'.join(map(str,sorted(acked))))
