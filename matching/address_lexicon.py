"""Word classes of Chinese address text that are *not* address: regexes over kinds of words.

Each class is written from what the word is (a letting term, a direction, a transport note, an
administrative body, a contact note), not from strings seen in any data set: e.g. every unit type
``N房M厅`` / ``N室M厅`` is one pattern, every ``地铁…站…出口`` one pattern. :mod:`matching.address`
applies them after NFKC, bracket and punctuation removal and before numerals are read.
"""

from __future__ import annotations

import re

__all__ = ["Gate", "TRADITIONAL", "strip_noise", "strip_tail_notes", "strip_unit_types", "ADDRESS_CHARS"]

CJK = "\u4e00-\u9fff"
_NUM = "零〇○一二两三四五六七八九十百千幺"

# traditional forms of the characters addresses are written with (NFKC leaves them alone)
TRADITIONAL = str.maketrans({
    "號": "号", "樓": "楼", "棟": "栋", "層": "层", "單": "单", "區": "区", "門": "门", "戶": "户",
    "邨": "村", "裡": "里", "衖": "巷", "廈": "厦", "園": "园", "華": "华", "廣": "广", "東": "东",
    "鎮": "镇", "內": "内", "間": "间", "廳": "厅", "對": "对", "側": "侧", "邊": "边", "鐵": "铁",
    "與": "与", "兩": "两", "貳": "二", "區": "区", "場": "场", "館": "馆", "處": "处", "電": "电",
    "話": "话", "聯": "联", "係": "系", "委": "委", "會": "会", "員": "员", "社": "社", "龍": "龙",
    "灣": "湾", "嶺": "岭", "橋": "桥", "莊": "庄", "閣": "阁", "寧": "宁", "陽": "阳", "臺": "台",
    "後": "后", "裏": "里", "於": "于", "滬": "沪", "衛": "卫", "廚": "厨", "陸": "陆", "萬": "万", "國": "国", "沖": "冲",
    "頭": "头", "崗": "岗", "圍": "围", "蓮": "莲", "環": "环", "濱": "滨", "強": "强", "學": "学", "廠": "厂", "風": "风", "雲":
    "云", "鳳": "凤", "長": "长", "興": "兴", "業": "业", "發": "发", "體": "体", "寶": "宝", "羅": "罗", "鹽": "盐", "麗": "丽",
    "綠": "绿", "豐": "丰", "農": "农", "漁": "渔", "黃": "黄", "獅": "狮", "灣": "湾", "總": "总", "廳": "厅", "園": "园", "車":
    "车", "線": "线", "號": "号", "際": "际", "區": "区", "濤": "涛", "溝": "沟", "壩": "坝", "灘": "滩", "漢": "汉", "濟": "济",
    "紅": "红", "綿": "绵", "錦": "锦", "銀": "银", "鋼": "钢", "鐘": "钟", "雙": "双", "雞": "鸡", "鵬": "鹏", "鶴": "鹤", "麥":
    "麦", "齊": "齐", "爾": "尔", "蘭": "兰", "藝": "艺", "蘇": "苏", "葉": "叶", "觀": "观", "貝": "贝", "財": "财", "貨": "货",
    "質": "质", "購": "购", "賓": "宾", "賽": "赛", "趙": "赵", "軍": "军", "輝": "辉", "輪": "轮", "遠": "远", "遲": "迟", "邊":
    "边", "郵": "邮", "鄉": "乡", "醫": "医", "開": "开", "閩": "闽", "關": "关", "陳": "陈", "陰": "阴", "隊": "队", "階": "阶",
    "隱": "隐", "雜": "杂", "離": "离", "電": "电", "靈": "灵", "頂": "顶", "順": "顺", "領": "领", "題": "题", "顏": "颜", "飛":
    "飞", "館": "馆", "馬": "马", "駐": "驻", "驛": "驿", "鬧": "闹", "魚": "鱼", "鳥": "鸟", "龐": "庞", "龜": "龟", "丟": "丢",
    "並": "并", "係": "系", "偉": "伟", "傳": "传", "僑": "侨", "億": "亿", "優": "优", "儀": "仪", "兒": "儿", "內": "内", "冊":
    "册", "凱": "凯", "劃": "划", "劉": "刘", "勞": "劳", "勝": "胜", "勵": "励", "匯": "汇", "協": "协", "卻": "却", "厲": "厉",
    "參": "参", "吳": "吴", "員": "员", "問": "问", "啟": "启", "團": "团", "圖": "图", "圓": "圆", "場": "场", "塊": "块", "塵":
    "尘", "墊": "垫", "壇": "坛", "壽": "寿", "夢": "梦", "夾": "夹", "奪": "夺", "奮": "奋", "妝": "妆", "婦": "妇", "媽": "妈",
    "孫": "孙", "寧": "宁", "實": "实", "審": "审", "寫": "写", "將": "将", "專": "专", "尋": "寻", "對": "对", "導": "导", "層":
    "层", "屬": "属", "岡": "冈", "峽": "峡", "島": "岛", "嶺": "岭", "巒": "峦", "幣": "币", "幫": "帮", "廟": "庙", "廣": "广",
    "廬": "庐", "張": "张", "彎": "弯", "彙": "汇", "從": "从", "復": "复", "徵": "征", "恆": "恒", "愛": "爱", "態": "态", "慶":
    "庆", "憶": "忆", "應": "应", "懷": "怀", "戰": "战", "戲": "戏", "擁": "拥", "擇": "择", "據": "据", "擴": "扩", "數": "数",
    "斷": "断", "時": "时", "晉": "晋", "暉": "晖", "書": "书", "會": "会", "東": "东", "條": "条", "楊": "杨", "極": "极", "樂":
    "乐", "標": "标", "樹": "树", "橋": "桥", "機": "机", "檢": "检", "權": "权", "歡": "欢", "歲": "岁", "歷": "历", "歸": "归",
    "殘": "残", "氣": "气", "沒": "没", "況": "况", "淺": "浅", "淵": "渊", "溫": "温", "湯": "汤", "滿": "满", "漲": "涨", "潔":
    "洁", "澤": "泽", "濕": "湿", "為": "为", "無": "无", "煙": "烟", "熱": "热", "燈": "灯", "爐": "炉", "牆": "墙", "狀": "状",
    "猶": "犹", "獎": "奖", "現": "现", "瑤": "瑶", "産": "产", "產": "产", "畫": "画", "當": "当", "疊": "叠", "盤": "盘", "盧":
    "卢", "眾": "众", "碼": "码", "確": "确", "礦": "矿", "禮": "礼", "種": "种", "穩": "稳", "窩": "窝", "競": "竞", "築": "筑",
    "簡": "简", "糧": "粮", "紀": "纪", "約": "约", "紡": "纺", "細": "细", "組": "组", "結": "结", "絲": "丝", "經": "经", "維":
    "维", "網": "网", "緣": "缘", "縣": "县", "織": "织", "續": "续", "纖": "纤", "罰": "罚", "義": "义", "習": "习", "聖": "圣",
    "聯": "联", "職": "职", "聽": "听", "肅": "肃", "脈": "脉", "腦": "脑", "臨": "临", "舉": "举", "艙": "舱", "華": "华", "莊":
    "庄", "營": "营", "藍": "蓝", "處": "处", "衛": "卫", "衝": "冲", "補": "补", "裝": "装", "製": "制", "複": "复", "見": "见",
    "規": "规", "視": "视", "親": "亲", "訊": "讯", "記": "记", "設": "设", "許": "许", "診": "诊", "試": "试", "詩": "诗", "話":
    "话", "誠": "诚", "語": "语", "說": "说", "調": "调", "論": "论", "謝": "谢", "證": "证", "識": "识", "議": "议", "讓": "让",
    "貿": "贸", "資": "资", "賢": "贤", "贊": "赞", "趕": "赶", "躍": "跃", "輕": "轻", "載": "载", "辦": "办", "運": "运", "過":
    "过", "達": "达", "適": "适", "選": "选", "還": "还", "鄧": "邓", "鄭": "郑", "釣": "钓", "鋪": "铺", "鎖": "锁", "鏈": "链",
    "鐵": "铁", "門": "门", "閣": "阁", "閱": "阅", "陽": "阳", "隨": "随", "險": "险", "雖": "虽", "靜": "静", "響": "响", "頁":
    "页", "項": "项", "預": "预", "頓": "顿", "類": "类", "顯": "显", "飯": "饭", "飲": "饮", "養": "养", "驗": "验", "髮": "发",
    "鬥": "斗", "麵": "面", "黨": "党", "齒": "齿", "龍": "龙", "龔": "龚",
})

# --- contact notes: a keyword and what follows it (name, number), or a bare phone number -----------
_CONTACT_KW = r"(?:联系人|联系电话|联系方式|联系|电话|手机号?|座机|TEL|PHONE|MOBILE|微信|QQ)"
_CONTACT = re.compile(_CONTACT_KW + r".*$")
_PHONE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")
_NAME_CHAR = rf"(?:(?![号栋幢座元层楼室房户坊巷排弄里村路道街期区])[{CJK}])"
_PERSON = re.compile(rf"{_NAME_CHAR}?(?:先生|小姐|女士|师傅|阿姨|老板)|房东|业主|户主|租户|承租人")

# --- letting and sale terms, unit types ------------------------------------------------------------
_UNIT_TYPE = re.compile(
    rf"[一二两三四五六七][房室][{_NUM}]厅(?:[{_NUM}]卫)?(?:[{_NUM}]厨)?(?:[{_NUM}]阳台)?"
    rf"|(?<![{_NUM}])[一二三四五六单]房(?:间)?(?![{_NUM}\d号室])|两房(?:间)?(?![{_NUM}\d号室])"
    r"|单间|套间|开间|复式|跃层|单身公寓")
_LETTING = re.compile(
    r"月租金?\d*元?|租金\d*元?|出租屋|出租房|出租|招租|转租|求租|合租|整租|短租|长租|月租|日租|直租|急租|出售|急售|售房|转让|"
    r"中介勿扰|免中介费?|无中介费?|中介费?|免佣|个人房源|"
    r"拎包(?:即可)?入住|(?:即可|随时|即时)入住|押[一二三四\d]付[一二三四\d]|"
    r"(?:精|简|豪华?)装修?|带家私家电|家私家电齐?全?|家电齐全|带家私|"
    r"电梯房|步梯房|楼梯房|空房|有房|房源|朝南|南北通透|采光好|整栋|整层|整套|整间")
_PRICE = re.compile(r"\d+元(?:/?月)?")

# written with Arabic digits, a unit type is only told from a room number by the space before it
_UNIT_TYPE_DIGITS = re.compile(rf"(?<![\d{_NUM}])[1-7]\s*[房室]\s*[0-4]\s*厅(?:\s*\d\s*卫)?(?:\s*\d\s*厨)?"
                               rf"|[一二两三四五六七]\s*[房室]\s*[{_NUM}]\s*厅(?:\s*[{_NUM}]\s*卫)?")

# --- transport notes: 近/距 + (地铁|公交…) + line + station + exit + distance --------------------------
_TRANSPORT = re.compile(
    rf"(?:近|靠近|临近|邻近|紧邻|距离?|离|步行)?(?:地铁|轻轨|公交|巴士|有轨电车)"
    rf"(?:\d+号线|[{_NUM}]+号线|[A-Z\d]*线)?(?:[{CJK}]{{0,8}}?(?:站|口|线))?(?:[A-Z]\d*|\d+号?)?(?:出口|口)?"
    r"(?:\d+米|步行\d+分钟?)?"
    rf"|(?:近|靠近|临近|邻近|紧邻)[{CJK}]{{1,8}}?(?:地铁站|公交站|车站|站)(?:[A-Z]\d*)?(?:出口|口)?"
    rf"|(?:^|(?<=[\d号路街道村坊巷区栋室层元]))(?:(?![\d号路街道村坊巷区栋室层元])[{CJK}]){{1,6}}?"
    rf"(?:地铁站|公交站|地铁口)(?:[A-Z]\d*)?(?:出口|口)?")

# --- directions and landmarks: a direction word, and the landmark written before it -------------------
_DIRECTION_WORDS = (r"斜对面|对面|对过|附近|旁边|旁|隔壁|背后|后面|后侧|前面|东侧|西侧|南侧|北侧|侧面|侧|"
                    r"边上|交界处|交汇处|交叉口|路口|一带|周边|周围")
_BOUNDARY = r"\d号路街道村坊巷区栋室层元"
_LANDMARK_CHAR = rf"(?:(?![{_BOUNDARY}])[{CJK}A-Z])"       # a landmark's name never spans a component end
_LANDMARK_DIRECTION = re.compile(
    rf"(?:^|(?<=[{_BOUNDARY}])){_LANDMARK_CHAR}{{0,8}}?(?:{_DIRECTION_WORDS})")
_PATH = re.compile(rf"(?:走|爬|坐|乘)?(?:楼梯|电梯|步梯)(?:口|间)?(?:上去|上楼)?|(?:往|向|朝)?[东西南北前后左右里内]?(?:走|转|拐)(?:\d+米)?|往里|进去|直走|楼下|楼上|"
                   rf"\d+米(?:处|左右)?|[东西南北]边|"
                   rf"(?<![{_NUM}])[{_NUM}]{{1,3}}[楼层]以[上下]|(?<!\d)\d{{1,2}}[楼层]以[上下]|以[上下]")

# the second road of an intersection (福华路与金田路交汇处): the first road is where the house is
_INTERSECTION = re.compile(rf"[与和及](?:(?![\d号])[{CJK}]){{1,8}}?(?:大道|路|街)(?:交汇处|交叉口|交界处|交汇|路口|口)?")

# --- administrative bodies and filler ---------------------------------------------------------------
_VILLAGE_COMMITTEE = re.compile(r"村?村(?:居民|民|居)?(?:委员会|委会|委)")
_COMMUNITY_BODY = re.compile(r"社区(?:居民委员会|居委会|工作站|服务中心|党群服务中心|股份合作公司|党委)")
_RESIDENTS_COMMITTEE = re.compile(r"居民委员会|居委会")
_COMPANY = re.compile(rf"(?:实业|投资|发展|置业)?(?:股份)(?:有限|合作)?(?:公司)?(?:[{CJK}]{{0,4}}分公司)?"
                      rf"|(?:实业|投资)(?:有限)?公司")
_OFFICE = re.compile(r"街道办事处|街道办|街办")
_BODY = re.compile(r"(?:物业)?管理处|物业(?:服务)?(?:中心|公司)|工作站|办事处|服务中心")
# labels written before a number (房号: 501, 第3栋) and ordinals
_LABEL = re.compile(rf"(?:房号|门牌号?|栋号|楼号|单元号|室号|楼层|房间号|第)(?=[\d{_NUM}A-Z])")
_LEAD = re.compile(r"^(?:现?居?住址|地址|现住|居住于?|住在|户籍地)")
_REPEAT = re.compile(rf"([{CJK}]{{2,10}}?)\1")

# characters that end an address part: a tail after the last of them holds no address
ADDRESS_CHARS = re.compile(rf"[\d{_NUM}号栋幢座元层楼室房户坊巷排弄村路道街期区A-Z][^\d{_NUM}号栋幢座元层楼室房户坊巷排弄村路道街期区A-Z]*$")
_TAIL_NOTE = re.compile(rf"(?:{_DIRECTION_WORDS}|往里|进去|直走|楼下|楼上|米|站|地铁|公交|出口|内|里面|门口)")


# characters every match of a class contains: a class whose characters are absent is not run (speed)
class Gate:
    """``gate.isdisjoint(s)``: whether none of the characters occurs in ``s`` (one compiled class search)."""

    def __init__(self, chars: str) -> None:
        self._rx = re.compile("[" + re.escape(chars) + "]")

    def isdisjoint(self, s: str) -> bool:
        return self._rx.search(s) is None


_GATES = {name: Gate(chars) for name, chars in {
    "contact": "联电手座TPM微Q", "person": "生姐士傅姨板东主租", "transport": "铁轨交巴车站",
    "unit_type": "厅房间复跃寓", "letting": "租售让介佣源住押装家梯房朝透采整", "company": "股司",
    "body": "理业站办服", "direction": "对近旁壁后前侧边交口带周靠", "path": "走转拐往进楼米边以梯",
    "committee": "委会办", "community_body": "工服党股"}.items()}


def strip_noise(s: str) -> str:
    """Remove every word class above from ``s`` (already NFKC'd, upper-cased, without spaces and
    punctuation); administrative bodies are reduced to what they name (上沙村委会 -> 上沙村)."""
    g = _GATES
    s = _LEAD.sub("", s)
    if "号" in s or "第" in s or "门" in s or "层" in s:
        s = _LABEL.sub("", s)
    if not g["contact"].isdisjoint(s):
        s = _CONTACT.sub("", s)
    s = _PHONE.sub("", s)
    if not g["person"].isdisjoint(s):
        s = _PERSON.sub("", s)
    if not g["transport"].isdisjoint(s):
        s = _TRANSPORT.sub("", s)
    if not g["unit_type"].isdisjoint(s):
        s = _UNIT_TYPE.sub("", s)
    if "元" in s:
        s = _PRICE.sub("", s)
    if not g["letting"].isdisjoint(s):
        s = _LETTING.sub("", s)
    if "与" in s or "和" in s or "及" in s:
        s = _INTERSECTION.sub("", s)
    if not g["direction"].isdisjoint(s) or not g["path"].isdisjoint(s):
        s = strip_tail_notes(s)
        if not g["direction"].isdisjoint(s):
            s = _LANDMARK_DIRECTION.sub("", s)         # 上沙村居委会对面东村二坊: the committee is a landmark
        if not g["path"].isdisjoint(s):
            s = _PATH.sub("", s)
    if not g["community_body"].isdisjoint(s) or not g["committee"].isdisjoint(s):
        s = _OFFICE.sub("街道", s)
        s = _COMMUNITY_BODY.sub("社区", s)
        s = _VILLAGE_COMMITTEE.sub("村", s)             # 上沙村居委会 -> 上沙村 (the village's committee)
        s = _RESIDENTS_COMMITTEE.sub("社区", s)
    if not g["company"].isdisjoint(s):
        s = _COMPANY.sub("村", s)
    s = s.replace("村村", "村").replace("社区社区", "社区").replace("街道街道", "街道")
    if not g["body"].isdisjoint(s):
        s = _BODY.sub("", s)
    return _REPEAT.sub(r"\1", s)


def strip_unit_types(s: str) -> str:
    """Remove unit types written with Arabic digits (``2房1厅``, ``3室2厅1卫``) while spaces still
    separate them from a room number (``501 2房1厅``); run before whitespace is dropped."""
    if "厅" not in s:
        return s
    return _UNIT_TYPE_DIGITS.sub(" ", s)


_END_NOTE = re.compile(rf"(?:{_DIRECTION_WORDS}|往里走|往里|进去|直走|楼下|楼上|里面|门口|靠[{CJK}]{{0,4}})$")
_NAME_END = frozenset("村路街道区")
_NUMBER_MARK = frozenset("号栋幢座元层楼室房户坊巷排弄期梯门F")
_NUMBER_CHARS = frozenset("0123456789" + _NUM)


def strip_tail_notes(s: str) -> str:
    """Drop a note at the end: a direction word and the landmark written before it, back to the last
    number or component end (``…单元五零二牌坊隔壁`` -> ``…单元五零二``; ``上沙村附近`` -> ``上沙村``);
    then any tail after the last address character that holds a note word (``…602沃尔玛里面``)."""
    for _ in range(3):
        m = _END_NOTE.search(s)
        if not m:
            break
        j = m.start()
        while j > 0:
            ch = s[j - 1]
            if ch in _NUMBER_CHARS or ch in _NAME_END:
                break
            if ch in _NUMBER_MARK and j >= 2 and (s[j - 2] in _NUMBER_CHARS or s[j - 2] in "号单栋"):
                break                                   # 3单元, 5号楼: a marker after a number
            j -= 1
        s = s[:j] if j > 0 else s[: m.start()]
    m = ADDRESS_CHARS.search(s)
    if m and len(m.group(0)) > 1 and _TAIL_NOTE.search(m.group(0)[1:]):
        return s[: m.start() + 1]
    return s
